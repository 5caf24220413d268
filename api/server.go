package api

import (
	"context"
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/saga"
)

// OpenAPI is the OpenAPI 3 description of the API, served at /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// API serves the HTTP interface.
type API struct {
	rdb       redis.UniversalClient
	orders    *handlers.Orders
	engine    *saga.Engine
	inventory *handlers.Inventory
	log       *slog.Logger
	// adminDigest is the SHA-256 of the admin token; nil: admin actions
	// are open (see ProtectAdmin).
	adminDigest *[32]byte
	requests    RequestObserver
	// Metrics, when set, is served at GET /metrics.
	Metrics http.Handler
	// UI, when set, is the dashboard at /ui/.
	UI *UI
}

// New returns the API.
func New(rdb redis.UniversalClient, engine *saga.Engine, orders *handlers.Orders, inventory *handlers.Inventory, log *slog.Logger) *API {
	if log == nil {
		log = slog.Default()
	}
	return &API{rdb: rdb, orders: orders, engine: engine, inventory: inventory, log: withRequestID(log)}
}

// ObserveRequests makes the API report every answered request to o.
func (a *API) ObserveRequests(o RequestObserver) { a.requests = o }

// NewServer returns an http.Server with the timeouts and header cap that
// keep slow or hostile clients from holding it (SPEC section 10).
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// apiRoute is one path of the API and its handler per method.
type apiRoute struct {
	path     string
	byMethod map[string]http.HandlerFunc
}

// routes are the API's paths, each described in openapi.yaml (the console's
// pages at /ui/ are not).
func (a *API) routes() []apiRoute {
	rs := []apiRoute{
		{"/orders", map[string]http.HandlerFunc{http.MethodPost: a.postOrder}},
		{"/orders/{id}", map[string]http.HandlerFunc{http.MethodGet: a.getOrder}},
		{"/sagas", map[string]http.HandlerFunc{http.MethodGet: a.listSagas}},
		{"/sagas/{id}", map[string]http.HandlerFunc{http.MethodGet: a.getSaga}},
		{"/sagas/{id}/retry", map[string]http.HandlerFunc{http.MethodPost: a.admin(a.retrySaga)}},
		{"/inventory/{sku}", map[string]http.HandlerFunc{http.MethodGet: a.getInventory, http.MethodPut: a.admin(a.putInventory)}},
		{"/deadletters", map[string]http.HandlerFunc{http.MethodGet: a.listDeadLetters}},
		{"/deadletters/{id}", map[string]http.HandlerFunc{http.MethodGet: a.getDeadLetter}},
		{"/deadletters/{id}/replay", map[string]http.HandlerFunc{http.MethodPost: a.admin(a.replayDeadLetter)}},
		{"/healthz", map[string]http.HandlerFunc{http.MethodGet: a.healthz}},
		{"/openapi.yaml", map[string]http.HandlerFunc{http.MethodGet: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/yaml")
			_, _ = w.Write(OpenAPI)
		}}},
		{"/readyz", map[string]http.HandlerFunc{http.MethodGet: a.readyz}},
	}
	if a.Metrics != nil {
		rs = append(rs, apiRoute{"/metrics", map[string]http.HandlerFunc{http.MethodGet: a.Metrics.ServeHTTP}})
	}
	return rs
}

// Handler returns the routes, behind the access log and request metrics.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range a.routes() {
		route(mux, r.path, r.byMethod)
	}
	if a.UI != nil {
		a.UI.register(mux)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such resource")
	})
	return a.access(a.recoverer(mux))
}

// route registers one handler per method and answers any other method with
// a JSON 405 and an Allow header.
func route(mux *http.ServeMux, path string, byMethod map[string]http.HandlerFunc) {
	allow := make([]string, 0, len(byMethod))
	for m, h := range byMethod {
		mux.HandleFunc(m+" "+path, h)
		allow = append(allow, m)
	}
	slices.Sort(allow)
	allowed := strings.Join(allow, ", ")
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allowed)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here")
	})
}

func (a *API) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				a.log.ErrorContext(r.Context(), "handler panic", "panic", p, "route", routeOf(r.Pattern))
				writeError(w, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// Advice of a 503, by what the client may safely do next.
const (
	adviceRead  = "storage is unavailable; retry later"
	adviceOrder = "storage is unavailable; the order may or may not have been placed: retry with the same Idempotency-Key and body"
	adviceRetry = "storage is unavailable; repeating this retry is safe: a saga already re-driven answers 409"
	adviceStock = "storage is unavailable; setting stock is idempotent: repeat the same request"
)

// unavailable answers a Redis failure with advice that fits the call.
func (a *API) unavailable(w http.ResponseWriter, r *http.Request, err error, advice string) {
	a.log.ErrorContext(r.Context(), "redis unavailable", "route", routeOf(r.Pattern), "err", err)
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "unavailable", advice)
}

func (a *API) postOrder(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if _, present := r.Header["Idempotency-Key"]; present && !validIdempotencyKey(key) {
		writeRequestError(w, badRequest("invalid_idempotency_key", "Idempotency-Key",
			"Idempotency-Key must be 1-128 printable ASCII characters without spaces"))
		return
	}
	var req orderRequest
	if rerr := readJSON(w, r, &req); rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	if rerr := req.validate(); rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	placed, err := a.orders.Place(r.Context(), handlers.PlaceRequest{
		CustomerID: req.CustomerID, Items: req.items(), IdempotencyKey: key, Fingerprint: req.fingerprint(),
	})
	if errors.Is(err, handlers.ErrIdempotencyMismatch) {
		writeError(w, http.StatusConflict, "idempotency_key_reuse", "this Idempotency-Key was used with a different request")
		return
	}
	if err != nil {
		a.unavailable(w, r, err, adviceOrder)
		return
	}
	if !placed.Created {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/orders/"+placed.OrderID)
	writeJSON(w, http.StatusAccepted, map[string]string{
		"order_id": placed.OrderID, "saga_id": placed.SagaID, "status": handlers.OrderStatusPending,
	})
}

func (a *API) getOrder(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !saga.ValidID(id) {
		writeError(w, http.StatusNotFound, "not_found", "no such order")
		return
	}
	v, err := a.orders.Get(r.Context(), id)
	if errors.Is(err, handlers.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such order")
		return
	}
	if err != nil {
		a.unavailable(w, r, err, adviceRead)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) getSaga(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !saga.ValidID(id) {
		writeError(w, http.StatusNotFound, "not_found", "no such saga")
		return
	}
	st, err := a.engine.Get(r.Context(), id)
	if errors.Is(err, saga.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such saga")
		return
	}
	if err != nil {
		a.unavailable(w, r, err, adviceRead)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// retrySaga re-drives a FAILED saga once an operator fixed the cause.
func (a *API) retrySaga(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !saga.ValidID(id) {
		writeError(w, http.StatusNotFound, "not_found", "no such saga")
		return
	}
	err := a.engine.Retry(r.Context(), id)
	switch {
	case errors.Is(err, saga.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such saga")
	case errors.Is(err, saga.ErrNotFailed):
		writeError(w, http.StatusConflict, "not_failed", "only a FAILED saga can be retried")
	case errors.Is(err, saga.ErrCannotRetry):
		writeError(w, http.StatusConflict, "cannot_retry", "nothing in this saga's definition can undo what is left; resolve it by hand")
	case err != nil:
		a.unavailable(w, r, err, adviceRetry)
	default:
		w.Header().Set("Location", "/sagas/"+id)
		writeJSON(w, http.StatusAccepted, map[string]string{"saga_id": id, "status": saga.StatusCompensating})
	}
}

// statusFilter turns a status query parameter into the statuses to list:
// all of them when empty; ok is false for an unknown status.
func statusFilter(status string) ([]string, bool) {
	if status == "" {
		return saga.Statuses, true
	}
	if slices.Contains(saga.Statuses, status) {
		return []string{status}, true
	}
	return nil, false
}

func (a *API) listSagas(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	statuses, ok := statusFilter(q.Get("status"))
	if !ok {
		writeRequestError(w, badRequest("invalid_status", "status", "status must be one of "+strings.Join(saga.Statuses, ", ")))
		return
	}
	limit, rerr := limitParam(r, 50)
	if rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	sagas, err := a.engine.List(r.Context(), statuses, limit)
	if err != nil {
		a.unavailable(w, r, err, adviceRead)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sagas": sagas})
}

// limitParam reads the limit query parameter: 1-1000, def when absent.
func limitParam(r *http.Request, def int) (int, *requestError) {
	l := r.URL.Query().Get("limit")
	if l == "" {
		return def, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > 1000 {
		return 0, badRequest("invalid_limit", "limit", "limit must be 1-1000")
	}
	return n, nil
}

type stockRequest struct {
	Available *int64 `json:"available"`
}

const maxStock = 1_000_000_000

func (a *API) putInventory(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	if !idRE.MatchString(sku) {
		writeRequestError(w, badRequest("invalid_id", "sku", "sku must be 1-64 characters of [A-Za-z0-9._-]"))
		return
	}
	var req stockRequest
	if rerr := readJSON(w, r, &req); rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	if req.Available == nil || *req.Available < 0 || *req.Available > maxStock {
		writeRequestError(w, badRequest("available_out_of_range", "available", "available must be 0-1000000000"))
		return
	}
	if err := a.inventory.Set(r.Context(), sku, *req.Available); err != nil {
		a.unavailable(w, r, err, adviceStock)
		return
	}
	s, err := a.inventory.Get(r.Context(), sku)
	if err != nil {
		a.unavailable(w, r, err, adviceStock)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *API) getInventory(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	if !idRE.MatchString(sku) {
		writeRequestError(w, badRequest("invalid_id", "sku", "sku must be 1-64 characters of [A-Za-z0-9._-]"))
		return
	}
	s, err := a.inventory.Get(r.Context(), sku)
	if err != nil {
		a.unavailable(w, r, err, adviceRead)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *API) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := a.rdb.Ping(ctx).Err(); err != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "not_ready", "redis is not reachable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
