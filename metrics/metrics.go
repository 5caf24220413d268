package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

const ns = "streamsaga"

// Metrics is one process's metrics.
type Metrics struct {
	reg      *prometheus.Registry
	sagas    *prometheus.CounterVec
	messages *prometheus.CounterVec
	handle   *prometheus.HistogramVec
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New makes the metrics of one process, with the Go runtime's.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		sagas: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "sagas_total",
			Help: "Saga status changes committed by this process: started, COMPENSATING, COMPLETED, COMPENSATED, FAILED.",
		}, []string{"type", "mode", "status"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "messages_total",
			Help: "Stream entries by consumer group and outcome (ok, retry, dead_letter, claimed, lost).",
		}, []string{"group", "outcome"}),
		handle: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "handle_seconds",
			Help:    "Time from reading an entry to the end of its handling, by group and event type (the step latency).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"group", "type"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by method, route pattern (\"unmatched\" for unknown paths) and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to answer an HTTP request, by method, route pattern and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"method", "route", "code"}),
	}
	m.reg.MustRegister(m.sagas, m.messages, m.handle, m.requests, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// SagaStatus counts a saga status change (saga.Options.OnStatus).
func (m *Metrics) SagaStatus(sagaType, mode, status string) {
	m.sagas.WithLabelValues(sagaType, mode, status).Inc()
}

// Observe implements streams.Observer.
func (m *Metrics) Observe(group string, o streams.Outcome) {
	m.messages.WithLabelValues(group, string(o)).Inc()
}

// Handled implements streams.Observer.
func (m *Metrics) Handled(group, eventType string, took time.Duration) {
	m.handle.WithLabelValues(group, eventType).Observe(took.Seconds())
}

// HTTPRequest counts one answered HTTP request. The caller keeps the labels
// bounded: a known method, a route pattern and never a raw path.
func (m *Metrics) HTTPRequest(method, route string, code int, took time.Duration) {
	c := strconv.Itoa(code)
	m.requests.WithLabelValues(method, route, c).Inc()
	m.latency.WithLabelValues(method, route, c).Observe(took.Seconds())
}

// Engine exposes an engine's counters: refused transitions, dead letters,
// aborts, sweeper actions and undone late effects.
func (m *Metrics) Engine(e *saga.Engine) {
	for name, f := range map[string]func(saga.Stats) int64{
		"stale_refused":       func(s saga.Stats) int64 { return s.Stale },
		"missing_saga":        func(s saga.Stats) int64 { return s.Missing },
		"rejected_entries":    func(s saga.Stats) int64 { return s.Rejected },
		"dead_lettered":       func(s saga.Stats) int64 { return s.DeadLettered },
		"aborted":             func(s saga.Stats) int64 { return s.Aborted },
		"failed":              func(s saga.Stats) int64 { return s.Failed },
		"swept_compensated":   func(s saga.Stats) int64 { return s.SweptCompensated },
		"swept_resent":        func(s saga.Stats) int64 { return s.SweptResent },
		"swept_failed":        func(s saga.Stats) int64 { return s.SweptFailed },
		"late_effects_undone": func(s saga.Stats) int64 { return s.Undone },
	} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: ns, Subsystem: "engine", Name: name + "_total",
			Help: "Saga engine: " + strings.ReplaceAll(name, "_", " ") + ".",
		}, func() float64 { return float64(f(e.Stats())) }))
	}
}

// Pool exposes a Redis client's connection pool statistics.
func (m *Metrics) Pool(name string, rdb redis.UniversalClient) {
	stat := func(f func(*redis.PoolStats) uint32) func() float64 {
		return func() float64 { return float64(f(rdb.PoolStats())) }
	}
	labels := prometheus.Labels{"client": name}
	for metric, f := range map[string]func(*redis.PoolStats) uint32{
		"hits":        func(s *redis.PoolStats) uint32 { return s.Hits },
		"misses":      func(s *redis.PoolStats) uint32 { return s.Misses },
		"timeouts":    func(s *redis.PoolStats) uint32 { return s.Timeouts },
		"total_conns": func(s *redis.PoolStats) uint32 { return s.TotalConns },
		"idle_conns":  func(s *redis.PoolStats) uint32 { return s.IdleConns },
	} {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: "redis_pool", Name: metric, Help: "go-redis pool statistic " + metric + ".",
			ConstLabels: labels,
		}, stat(f)))
	}
}

// Streams exposes, at each scrape, every stream's length and every group's
// lag, pending count and the age of its oldest pending entry.
func (m *Metrics) Streams(rdb redis.UniversalClient, keys []string) {
	m.reg.MustRegister(&streamCollector{rdb: rdb, keys: keys})
}

var (
	streamLength = prometheus.NewDesc(ns+"_stream_length", "Entries in the stream.", []string{"stream"}, nil)
	groupLag     = prometheus.NewDesc(ns+"_group_lag", "Entries the group has not read yet.", []string{"stream", "group"}, nil)
	groupPending = prometheus.NewDesc(ns+"_group_pending", "Entries read by the group and not acknowledged.", []string{"stream", "group"}, nil)
	oldestAge    = prometheus.NewDesc(ns+"_group_oldest_pending_seconds", "Age of the group's oldest pending entry (0 when none).", []string{"stream", "group"}, nil)
)

type streamCollector struct {
	rdb  redis.UniversalClient
	keys []string
}

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- streamLength
	ch <- groupLag
	ch <- groupPending
	ch <- oldestAge
}

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	now, err := c.rdb.Time(ctx).Result() // entry ids carry Redis time
	if err != nil {
		return
	}
	for _, key := range c.keys {
		n, err := c.rdb.XLen(ctx, key).Result()
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(streamLength, prometheus.GaugeValue, float64(n), key)
		groups, err := c.rdb.XInfoGroups(ctx, key).Result()
		if err != nil {
			continue
		}
		for _, g := range groups {
			ch <- prometheus.MustNewConstMetric(groupLag, prometheus.GaugeValue, float64(max(g.Lag, 0)), key, g.Name)
			ch <- prometheus.MustNewConstMetric(groupPending, prometheus.GaugeValue, float64(g.Pending), key, g.Name)
			age := 0.0
			if g.Pending > 0 {
				if p, err := c.rdb.XPending(ctx, key, g.Name).Result(); err == nil {
					age = now.Sub(idTime(p.Lower)).Seconds()
				}
			}
			ch <- prometheus.MustNewConstMetric(oldestAge, prometheus.GaugeValue, max(age, 0), key, g.Name)
		}
	}
}

// idTime is the time part of a stream entry id ("<unix ms>-<seq>").
func idTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	v, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Now()
	}
	return time.UnixMilli(v)
}
