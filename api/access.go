package api

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
)

// RequestObserver records each answered request (metrics.Metrics is one).
// Its labels stay bounded: a known method or "OTHER", a route pattern or
// "unmatched", and the status code.
type RequestObserver interface {
	HTTPRequest(method, route string, code int, took time.Duration)
}

// unmatched is the route of a request no pattern matched: the raw path would
// give every scanner's probe its own metric series.
const unmatched = "unmatched"

// requestIDRE is what a client's X-Request-Id must look like to be kept:
// short, and only characters that are safe in a log line and a header
// (UUIDs, W3C trace ids, base64 and AWS-style "Root=1-…" ids all fit).
var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._~:+/=-]{1,128}$`)

type ctxKey struct{}

// requestID returns the id of the request ctx belongs to, or "".
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// requestIDHandler adds the request id to every record logged with a
// request's context, so that a handler's error and the access line of the
// same request can be joined.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// withRequestID returns log with request ids added from the context.
func withRequestID(log *slog.Logger) *slog.Logger {
	if _, ok := log.Handler().(requestIDHandler); ok {
		return log
	}
	return slog.New(requestIDHandler{log.Handler()})
}

// recorder remembers the status and size of an answer.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush keeps streaming answers (server-sent events) working through the
// recorder.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		if r.status == 0 {
			r.status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// access gives each request an id, then logs one line and records metrics
// once it is answered. It logs no header, query or body: the Authorization
// header and the admin token never reach a log.
func (a *API) access(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !requestIDRE.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), ctxKey{}, id)
		r = r.WithContext(ctx)
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		took := time.Since(start)
		status := rec.status
		if status == 0 {
			status = http.StatusOK // nothing written: net/http answers 200
		}
		// The mux sets the pattern it matched on this same request.
		route, method := routeOf(r.Pattern), methodLabel(r.Method)
		if a.requests != nil {
			a.requests.HTTPRequest(method, route, status, took)
		}
		level := slog.LevelInfo
		if probe(route) && status < 400 {
			level = slog.LevelDebug // health checks and scrapes every few seconds
		}
		a.log.LogAttrs(ctx, level, "http request",
			slog.String("method", method), slog.String("route", route), slog.Int("status", status),
			slog.Float64("duration_ms", float64(took.Microseconds())/1000), slog.Int64("bytes", rec.bytes))
	})
}

func newRequestID() string {
	if u, err := uuid.NewV7(); err == nil {
		return u.String()
	}
	return uuid.NewString()
}

// routeOf turns a ServeMux pattern ("GET /sagas/{id}") into a route label
// ("/sagas/{id}"); the catch-all and an unmatched request are "unmatched".
func routeOf(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	pattern = strings.TrimSuffix(pattern, "{$}")
	if pattern == "" || pattern == "/" {
		return unmatched
	}
	return pattern
}

// methodLabel keeps the method label bounded: net/http accepts any token as
// a method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

func probe(route string) bool {
	return route == "/healthz" || route == "/readyz" || route == "/metrics"
}
