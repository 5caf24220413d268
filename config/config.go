package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/streamsaga/streamsaga/event"
)

var serviceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ErrInvalid wraps every configuration error, so callers can exit with
// status 2 on it.
var ErrInvalid = errors.New("invalid configuration")

// Config is the whole environment of the API and the worker. Each binary
// reads the fields it needs; all are validated so a typo fails fast anywhere.
//
// Every field has an env tag, its default in envDefault and a one-line
// description in help: the binaries' -h is generated from them (Vars).
type Config struct {
	// RedisURL may carry credentials; log it through RedactURL.
	RedisURL       string `env:"REDIS_URL" envDefault:"redis://localhost:6379/0" help:"Redis to use: redis://[user:pass@]host:port/db, rediss:// for TLS, unix:// for a socket"`
	RedisTLSCAFile string `env:"REDIS_TLS_CA_FILE" help:"PEM file of the authorities trusted for rediss:// (a private CA); empty: the system's"`
	// ClusterAddrs take precedence over REDIS_URL's address; its credentials
	// and TLS still apply.
	ClusterAddrs []string `env:"REDIS_CLUSTER_ADDRS" envSeparator:"," help:"comma list of seed nodes (host:port) of a Redis Cluster; replaces REDIS_URL's address"`
	Prefix       string   `env:"SAGA_PREFIX" envDefault:"saga" help:"first part of every key (1-32 characters of [A-Za-z0-9_-])"`
	// Partitions is fixed once chosen: keys embed the partition.
	Partitions       int    `env:"SAGA_PARTITIONS" envDefault:"1" help:"number of partitions, hash tags {0}..{N-1}; never change it on existing data"`
	WorkerPartitions []int  `env:"WORKER_PARTITIONS" envSeparator:"," help:"comma list of the partitions this worker reads; empty: all"`
	Mode             string `env:"SAGA_MODE" envDefault:"choreography" help:"style of the sagas the API starts: choreography or orchestration"`
	HTTPAddr         string `env:"HTTP_ADDR" envDefault:":8080" help:"where the API listens (it serves /metrics, /healthz and /readyz there too)"`
	MetricsAddr      string `env:"WORKER_METRICS_ADDR" envDefault:"" help:"where a worker serves /metrics, /healthz and /readyz; empty: not served"`
	// Services are checked against the services the saga types declare.
	Services    []string      `env:"WORKER_SERVICES" envDefault:"all" envSeparator:"," help:"services (consumer groups) a worker runs: all, or a comma list of order,payment,inventory,shipping,orchestrator"`
	Concurrency int           `env:"WORKER_CONCURRENCY" envDefault:"64" help:"entries one worker handles at once"`
	ReadCount   int           `env:"WORKER_READ_COUNT" envDefault:"64" help:"COUNT of one XREADGROUP"`
	StepTimeout time.Duration `env:"SAGA_STEP_TIMEOUT" envDefault:"30s" help:"deadline of each step; a stalled saga is compensated after it"`
	SagaTimeout time.Duration `env:"SAGA_TIMEOUT" envDefault:"0s" help:"deadline of a whole saga besides each step's; 0: none"`
	// ClaimMinIdle must exceed any legitimate handling time.
	ClaimMinIdle time.Duration `env:"CLAIM_MIN_IDLE" envDefault:"15s" help:"how long an entry stays pending before another worker may reclaim it"`
	// HandleTimeout stays below CLAIM_MIN_IDLE so that a handler gives up
	// before another worker may reclaim its entry.
	HandleTimeout time.Duration `env:"WORKER_HANDLE_TIMEOUT" envDefault:"0s" help:"bound of one delivery, from when it was read; keep it below CLAIM_MIN_IDLE; 0: 90% of CLAIM_MIN_IDLE"`
	// ConsumerIdle: such a consumer's worker died or scaled away.
	ConsumerIdle           time.Duration `env:"CONSUMER_IDLE" envDefault:"0s" help:"a consumer holding nothing and idle this long is deleted; 0: 20 x CLAIM_MIN_IDLE, at least 1m"`
	MaxDeliveries          int           `env:"MAX_DELIVERIES" envDefault:"5" help:"failed deliveries after which an entry goes to the dead-letter stream"`
	StreamRetention        time.Duration `env:"STREAM_RETENTION" envDefault:"1h" help:"how long stream entries are kept once every group is past them"`
	SagaRetention          time.Duration `env:"SAGA_RETENTION" envDefault:"168h" help:"how long a finished saga (and dead letters, alerts) is kept"`
	IdempotencyTTL         time.Duration `env:"IDEMPOTENCY_TTL" envDefault:"24h" help:"how long an Idempotency-Key is remembered"`
	CompensationAttempts   int           `env:"COMPENSATION_ATTEMPTS" envDefault:"5" help:"tries of an orchestrated compensation before its saga becomes FAILED"`
	CompensationBackoff    time.Duration `env:"COMPENSATION_BACKOFF" envDefault:"200ms" help:"wait before the first retry of a failed compensation; doubles up to COMPENSATION_BACKOFF_MAX"`
	CompensationBackoffMax time.Duration `env:"COMPENSATION_BACKOFF_MAX" envDefault:"30s" help:"cap of that wait"`
	// ClockOffset is a test knob: workers with skewed clocks must time
	// nothing out early or twice.
	ClockOffset time.Duration `env:"CLOCK_OFFSET" envDefault:"0s" help:"shifts this process's clock (testing)"`
	LogLevel    string        `env:"LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
	// AdminToken is a secret: never log it.
	AdminToken string `env:"ADMIN_TOKEN" help:"bearer token the API requires for admin actions (retry, stock, dead-letter replay, console actions); empty: open"`

	// The fake gateway and carrier of the demo domain.
	PaymentLimitCents   int64         `env:"PAYMENT_LIMIT_CENTS" envDefault:"100000" help:"the fake gateway declines larger charges"`
	ShippingMaxUnits    int64         `env:"SHIPPING_MAX_UNITS" envDefault:"1000" help:"larger orders fail to ship"`
	PaymentFailureRate  float64       `env:"PAYMENT_FAILURE_RATE" envDefault:"0" help:"share of charges declined at random (0..1)"`
	ShippingFailureRate float64       `env:"SHIPPING_FAILURE_RATE" envDefault:"0" help:"share of shipments failing at random (0..1)"`
	PaymentLatency      time.Duration `env:"PAYMENT_LATENCY" envDefault:"0s" help:"added to every gateway call"`
	ShippingLatency     time.Duration `env:"SHIPPING_LATENCY" envDefault:"0s" help:"added to every shipment"`
	RefundFailures      int           `env:"PAYMENT_REFUND_FAILURES" envDefault:"0" help:"the gateway refuses the first N refunds of every saga (chaos knob for compensation retries)"`
}

var tokenRE = regexp.MustCompile(`^[!-~]{1,256}$`)

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Load reads the process environment.
func Load() (*Config, error) { return LoadFrom(nil) }

// LoadFrom reads the given environment instead of the process's when environ
// is not nil (tests use it).
func LoadFrom(environ map[string]string) (*Config, error) {
	var c Config
	opts := env.Options{Environment: environ}
	if err := env.ParseWithOptions(&c, opts); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, describe(err))
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks every value and returns all problems at once, each naming
// its variable.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
		bad("REDIS_URL", "must be a redis://, rediss:// or unix:// URL")
	} else if c.RedisTLSCAFile != "" && u.Scheme != "rediss" {
		bad("REDIS_TLS_CA_FILE", "needs a rediss:// REDIS_URL")
	}
	for _, a := range c.ClusterAddrs {
		if host, port, err := net.SplitHostPort(strings.TrimSpace(a)); err != nil || host == "" || port == "" {
			bad("REDIS_CLUSTER_ADDRS", "must be a comma-separated list of host:port, got %q", a)
			break
		}
	}
	if len(c.ClusterAddrs) > 0 {
		if u, err := url.Parse(c.RedisURL); err == nil && ((strings.Trim(u.Path, "/") != "" && strings.Trim(u.Path, "/") != "0") ||
			(u.Query().Has("db") && u.Query().Get("db") != "0")) {
			bad("REDIS_URL", "must use database 0 with REDIS_CLUSTER_ADDRS (a cluster has no other)")
		}
	}
	if c.RedisTLSCAFile != "" {
		if _, err := os.Stat(c.RedisTLSCAFile); err != nil {
			bad("REDIS_TLS_CA_FILE", "cannot be read: %v", err)
		}
	}
	if !prefixRE.MatchString(c.Prefix) {
		bad("SAGA_PREFIX", "must be 1-32 characters of [A-Za-z0-9_-]")
	}
	if c.Partitions < 1 || c.Partitions > 16384 {
		bad("SAGA_PARTITIONS", "must be between 1 and 16384, got %d", c.Partitions)
	}
	for _, p := range c.WorkerPartitions {
		if p < 0 || p >= c.Partitions {
			bad("WORKER_PARTITIONS", "partition %d is not in 0..SAGA_PARTITIONS-1 (%d)", p, c.Partitions-1)
			break
		}
	}
	if c.Mode != event.ModeChoreography && c.Mode != event.ModeOrchestration {
		bad("SAGA_MODE", "must be choreography or orchestration, got %q", c.Mode)
	}
	if c.HTTPAddr == "" || !strings.Contains(c.HTTPAddr, ":") {
		bad("HTTP_ADDR", "must be host:port or :port")
	}
	if c.MetricsAddr != "" && !strings.Contains(c.MetricsAddr, ":") {
		bad("WORKER_METRICS_ADDR", "must be host:port or :port")
	}
	if len(c.Services) == 0 {
		bad("WORKER_SERVICES", "must name at least one service")
	}
	for i, s := range c.Services {
		c.Services[i] = strings.TrimSpace(s)
		if !serviceRE.MatchString(c.Services[i]) {
			bad("WORKER_SERVICES", "%q is not a service name (the worker checks it against its sagas' services)", c.Services[i])
		}
	}
	positive := func(name string, v int, max int) {
		if v < 1 || v > max {
			bad(name, "must be between 1 and %d, got %d", max, v)
		}
	}
	positive("WORKER_CONCURRENCY", c.Concurrency, 100000)
	positive("WORKER_READ_COUNT", c.ReadCount, 10000)
	positive("MAX_DELIVERIES", c.MaxDeliveries, 1000)
	positive("COMPENSATION_ATTEMPTS", c.CompensationAttempts, 1000)
	if c.RefundFailures < 0 {
		bad("PAYMENT_REFUND_FAILURES", "must not be negative")
	}
	durations := []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"SAGA_STEP_TIMEOUT", c.StepTimeout, 10 * time.Millisecond},
		{"CLAIM_MIN_IDLE", c.ClaimMinIdle, 10 * time.Millisecond},
		{"STREAM_RETENTION", c.StreamRetention, 0},
		{"SAGA_TIMEOUT", c.SagaTimeout, 0},
		{"WORKER_HANDLE_TIMEOUT", c.HandleTimeout, 0},
		{"CONSUMER_IDLE", c.ConsumerIdle, 0},
		{"SAGA_RETENTION", c.SagaRetention, time.Second},
		{"IDEMPOTENCY_TTL", c.IdempotencyTTL, time.Second},
		{"PAYMENT_LATENCY", c.PaymentLatency, 0},
		{"SHIPPING_LATENCY", c.ShippingLatency, 0},
		{"COMPENSATION_BACKOFF", c.CompensationBackoff, time.Millisecond},
		{"COMPENSATION_BACKOFF_MAX", c.CompensationBackoffMax, time.Millisecond},
	}
	for _, d := range durations {
		if d.v < d.min {
			bad(d.name, "must be at least %s, got %s", d.min, d.v)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	// The token travels in an Authorization header: a space or a control
	// character would make it impossible to send. Its value is never echoed.
	if c.AdminToken != "" && !tokenRE.MatchString(c.AdminToken) {
		bad("ADMIN_TOKEN", "must be 1-256 printable ASCII characters without spaces")
	}
	if c.PaymentLimitCents < 0 {
		bad("PAYMENT_LIMIT_CENTS", "must not be negative")
	}
	if c.ShippingMaxUnits < 0 {
		bad("SHIPPING_MAX_UNITS", "must not be negative")
	}
	for name, rate := range map[string]float64{"PAYMENT_FAILURE_RATE": c.PaymentFailureRate, "SHIPPING_FAILURE_RATE": c.ShippingFailureRate} {
		if !(rate >= 0 && rate <= 1) {
			bad(name, "must be between 0 and 1, got %v", rate)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// describe rewrites caarlos0/env's errors, which name Go fields, so that they
// name the environment variable instead.
func describe(err error) string {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err.Error()
	}
	t := reflect.TypeFor[Config]()
	var parts []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := t.FieldByName(pe.Name); ok {
				parts = append(parts, fmt.Sprintf("%s: cannot parse as %s: %v", f.Tag.Get("env"), pe.Type, pe.Err))
				continue
			}
		}
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, "; ")
}

// RedactURL hides the password of a Redis URL so that it can be logged.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.Redacted()
}

// NewLogger returns the JSON logger of the binaries at the configured level.
func NewLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
