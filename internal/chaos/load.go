package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamsaga/streamsaga/handlers"
)

// acked is an order the API acknowledged (202), as the ledger keeps it.
type acked struct {
	Key     string `json:"key"`
	OrderID string `json:"order_id"`
	SagaID  string `json:"saga_id"`
	Kind    string `json:"kind"`
	// Items are what the harness sent: the checker computes totals and
	// stock from them, not from what the product stored.
	Items []handlers.Item `json:"items"`
}

// ledger records every acknowledged order, appended and fsynced to a file
// before it counts, so a crash of the harness itself would not hide a loss.
type ledger struct {
	mu       sync.Mutex
	f        *os.File
	orders   []acked
	retries  atomic.Int64 // requests retried with the same key
	gaveUp   atomic.Int64 // keys never acknowledged within the deadline
	rejected atomic.Int64 // 4xx answers: a defect of the harness or the API
	errMu    sync.Mutex
	firstErr error
}

func (l *ledger) fail(err error) {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	if l.firstErr == nil {
		l.firstErr = err
	}
}

func (l *ledger) err() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.firstErr
}

func (l *ledger) add(a acked) error {
	b, _ := json.Marshal(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return err
	}
	if err := l.f.Sync(); err != nil {
		return err
	}
	l.orders = append(l.orders, a)
	return nil
}

func (l *ledger) snapshot() []acked {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]acked(nil), l.orders...)
}

// orderKind chooses the path an order takes: most complete, the others
// cover every compensation path.
func orderKind(i int) (kind string, items []handlers.Item) {
	switch i % 10 {
	case 7:
		return "declined", []handlers.Item{{SKU: "sku-a", Quantity: 1, UnitPriceCents: 500000}}
	case 8:
		return "shipment-failed", []handlers.Item{{SKU: "sku-b", Quantity: 1001, UnitPriceCents: 1}}
	case 9:
		return "stock-short", []handlers.Item{{SKU: "sku-a", Quantity: 1, UnitPriceCents: 100}, {SKU: "sku-scarce", Quantity: 1, UnitPriceCents: 100}}
	default:
		return "happy", []handlers.Item{{SKU: "sku-a", Quantity: 1, UnitPriceCents: 900}}
	}
}

// initialStock is what the harness sets before a load.
var initialStock = map[string]int64{"sku-a": 1_000_000, "sku-b": 1_000_000, "sku-scarce": 0}

// load places orders at rate for d from clients goroutines. An unknown
// outcome (no answer, 5xx) is retried with the same Idempotency-Key until
// an answer comes or the deadline passes; only a 202 enters the ledger.
func load(ctx context.Context, apiURL string, run string, rate float64, d time.Duration, l *ledger) {
	client := &http.Client{Timeout: 3 * time.Second}
	jobs := make(chan int, 256)
	var wg sync.WaitGroup
	giveUpAt := time.Now().Add(d + 90*time.Second)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				place(ctx, client, apiURL, fmt.Sprintf("%s-%d", run, i), i, giveUpAt, l)
			}
		}()
	}
	begin := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	issued := 0
	for now := range tick.C {
		if ctx.Err() != nil || now.Sub(begin) >= d {
			break
		}
		for due := int(now.Sub(begin).Seconds() * rate); issued < due; issued++ {
			jobs <- issued
		}
	}
	close(jobs)
	wg.Wait()
}

func place(ctx context.Context, client *http.Client, apiURL, key string, i int, giveUpAt time.Time, l *ledger) {
	kind, items := orderKind(i)
	body, _ := json.Marshal(map[string]any{"customer_id": "chaos", "items": items})
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			l.retries.Add(1)
			time.Sleep(min(time.Duration(attempt)*100*time.Millisecond, time.Second))
		}
		if time.Now().After(giveUpAt) || ctx.Err() != nil {
			l.gaveUp.Add(1)
			return
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/orders", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			continue // unknown outcome: the same key again
		}
		var out struct {
			OrderID string `json:"order_id"`
			SagaID  string `json:"saga_id"`
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusAccepted:
			if err := json.Unmarshal(b, &out); err != nil || out.OrderID == "" {
				l.fail(fmt.Errorf("202 without an order: %s", b))
				return
			}
			if err := l.add(acked{Key: key, OrderID: out.OrderID, SagaID: out.SagaID, Kind: kind, Items: items}); err != nil {
				l.fail(err)
			}
			return
		case resp.StatusCode >= 500:
			continue
		default:
			l.rejected.Add(1)
			l.fail(fmt.Errorf("POST /orders: %d %s", resp.StatusCode, b))
			return
		}
	}
}
