package api_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/sagatest"
)

func mustContain(t *testing.T, where, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, l) {
			t.Errorf("%s lacks %q", where, l)
		}
	}
}

// /metrics on the API and on a worker move when sagas run.
func TestMetricsMove(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	workerMetrics := fmt.Sprintf("127.0.0.1:%d", port)
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	s.StartWorker(map[string]string{"WORKER_METRICS_ADDR": workerMetrics})
	s.SetStock("sku-m", 10)
	var placed []sagatest.Placed
	for _, price := range []int64{100, 200000} {
		o, err := s.PlaceOrder("c-m", sagatest.I("sku-m", 1, price))
		if err != nil {
			t.Fatal(err)
		}
		placed = append(placed, o)
	}
	s.WaitFinished(placed, 10*time.Second)
	s.WaitAtRest(5 * time.Second)
	p := s.Env["SAGA_PREFIX"]
	mustContain(t, "API /metrics", get(t, s.APIURL+"/metrics"),
		`streamsaga_sagas_total{mode="choreography",status="started",type="ORDER_SAGA"} 2`,
		`streamsaga_stream_length{stream="`+p+`:{0}:order.created"} 2`,
		`streamsaga_group_pending{group="payment",stream="`+p+`:{0}:order.created"} 0`,
		`streamsaga_group_lag{group="payment",stream="`+p+`:{0}:order.created"} 0`,
		`streamsaga_group_oldest_pending_seconds{group="payment",stream="`+p+`:{0}:order.created"} 0`,
		`streamsaga_redis_pool_total_conns{client="api"}`,
		`go_goroutines`)
	mustContain(t, "worker /metrics", get(t, "http://"+workerMetrics+"/metrics"),
		`streamsaga_sagas_total{mode="choreography",status="COMPLETED",type="ORDER_SAGA"} 1`,
		`streamsaga_sagas_total{mode="choreography",status="COMPENSATED",type="ORDER_SAGA"} 1`,
		`streamsaga_sagas_total{mode="choreography",status="COMPENSATING",type="ORDER_SAGA"} 1`,
		`streamsaga_messages_total{group="payment",outcome="ok"} 2`, // 2 charges (the settle goes with the completion)
		`streamsaga_handle_seconds_count{group="payment",type="order.created"} 2`,
		`streamsaga_engine_stale_refused_total 0`,
		`streamsaga_engine_swept_compensated_total 0`,
		`streamsaga_redis_pool_total_conns{client="reader"}`)
}
