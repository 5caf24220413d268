package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/saga"
)

// The console's pages and static files ship inside the binary: it works
// offline, with no build step and nothing fetched from elsewhere.
//
//go:embed ui/*.html ui/static/*
var uiFS embed.FS

// uiCSP lets a console page load only the console's own script, style and
// API: no inline script or style, no other origin, no framing.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// uiAsset is an embedded static file with its validator.
type uiAsset struct {
	body        []byte
	etag, ctype string
}

var (
	uiAssets    = mustAssets()
	uiTemplates = template.Must(template.New("").Funcs(template.FuncMap{
		"asset": assetURL, "clock": clock, "stamp": stamp, "short": shortID,
	}).ParseFS(uiFS, "ui/*.html"))
)

func mustAssets() map[string]uiAsset {
	out := map[string]uiAsset{}
	err := fs.WalkDir(uiFS, "ui/static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := uiFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // not left to the host's mime tables
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".css":
			ctype = "text/css; charset=utf-8"
		}
		out[path.Base(p)] = uiAsset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ctype}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("console assets: %v", err))
	}
	return out
}

// assetURL names a static file with its content hash, so that a browser
// never runs an old script against a new page.
func assetURL(name string) string {
	a, ok := uiAssets[name]
	if !ok {
		panic("console: no static file " + name)
	}
	return "/ui/static/" + name + "?v=" + strings.Trim(a.etag, `"`)
}

// UI is the operator console at /ui/: sagas with search, filters and
// paging, one saga's detail and timeline, alerts, dead letters and streams.
// Every page renders on the server (it works with JavaScript off); a small
// script refreshes it from the JSON twin of each page under /ui/api/ and
// sends retry and replay to the public API, so that actions pass the API's
// own checks (ADMIN_TOKEN included). The console itself changes nothing.
type UI struct {
	rdb     redis.UniversalClient
	engine  *saga.Engine
	orders  *handlers.Orders
	streams []string // every stream to show
	log     *slog.Logger
}

// NewUI returns the console over the given streams; orders finds the saga of
// an order id (search). It logs to log, the API's logger (nil:
// slog.Default()), so that its lines carry the request id and follow
// LOG_LEVEL like the API's own.
func NewUI(rdb redis.UniversalClient, engine *saga.Engine, orders *handlers.Orders, streamKeys []string, log *slog.Logger) *UI {
	if log == nil {
		log = slog.Default()
	}
	return &UI{rdb: rdb, engine: engine, orders: orders, streams: streamKeys, log: withRequestID(log)}
}

// uiView is what a console handler produced: the page's template (name.html,
// whose live region is the template name-live), its title and its data.
type uiView struct {
	name, title string
	data        any
}

// uiViewFunc builds a view; its error is a *uiError or a storage failure.
type uiViewFunc func(r *http.Request) (*uiView, error)

// uiError is a request the console refuses, with the status to answer.
type uiError struct {
	status      int
	code, msg   string
	unavailable bool
}

func (e *uiError) Error() string { return e.msg }

func uiBad(code, msg string) *uiError {
	return &uiError{status: http.StatusBadRequest, code: code, msg: msg}
}

func uiNotFound(msg string) *uiError {
	return &uiError{status: http.StatusNotFound, code: "not_found", msg: msg}
}

// register adds the console's routes: each page and its JSON twin, search,
// and the static files.
func (u *UI) register(mux *http.ServeMux) {
	route(mux, "/ui", map[string]http.HandlerFunc{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	}})
	u.pair(mux, "/ui/{$}", "/ui/api/sagas", u.sagasView)
	u.pair(mux, "/ui/sagas/{id}", "/ui/api/sagas/{id}", u.sagaView)
	u.pair(mux, "/ui/alerts", "/ui/api/alerts", u.alertsView)
	u.pair(mux, "/ui/deadletters", "/ui/api/deadletters", u.deadView)
	u.pair(mux, "/ui/streams", "/ui/api/streams", u.streamsView)
	route(mux, "/ui/search", map[string]http.HandlerFunc{http.MethodGet: u.search})
	route(mux, "/ui/static/{file}", map[string]http.HandlerFunc{http.MethodGet: u.static})
}

// pair serves a view as a page at pagePath and as JSON at livePath, the
// address the page's script polls.
func (u *UI) pair(mux *http.ServeMux, pagePath, livePath string, f uiViewFunc) {
	route(mux, pagePath, map[string]http.HandlerFunc{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			u.renderError(w, r, err)
			return
		}
		live := strings.Replace(livePath, "{id}", url.PathEscape(r.PathValue("id")), 1)
		if q := r.URL.Query().Encode(); q != "" {
			live += "?" + q
		}
		u.render(w, r, http.StatusOK, v.name+".html", u.root(r, v, live))
	}})
	route(mux, livePath, map[string]http.HandlerFunc{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			u.jsonError(w, r, err)
			return
		}
		var html bytes.Buffer
		if err := uiTemplates.ExecuteTemplate(&html, v.name+"-live", u.root(r, v, "")); err != nil {
			u.log.ErrorContext(r.Context(), "console render", "view", v.name, "err", err)
			writeError(w, http.StatusInternalServerError, "internal", "render failed")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeLiveJSON(w, map[string]any{"view": v.name, "data": v.data, "html": html.String()})
	}})
}

// writeLiveJSON answers a page's JSON twin with JSON's HTML escaping on
// (unlike the API's writeJSON): it carries saga data and HTML fragments
// the page inserts, so that no "<" of the data is ever literal in it.
func writeLiveJSON(w http.ResponseWriter, v any) { encodeJSON(w, http.StatusOK, v, true) }

// uiRoot is what every template gets: the page chrome and the view's data.
type uiRoot struct {
	Page uiChrome
	V    any
}

type uiChrome struct {
	Title, Now, LiveURL, Query string
	Nav                        []uiNav
	Statuses, Modes, Types     []string
}

type uiNav struct {
	Label, Href string
	Active      bool
}

func (u *UI) root(r *http.Request, v *uiView, live string) uiRoot {
	return uiRoot{Page: u.chrome(r, v.title, live), V: v.data}
}

func (u *UI) chrome(r *http.Request, title, live string) uiChrome {
	nav := []uiNav{{Label: "Sagas", Href: "/ui/"}, {Label: "Alerts", Href: "/ui/alerts"},
		{Label: "Dead letters", Href: "/ui/deadletters"}, {Label: "Streams", Href: "/ui/streams"}}
	for i := range nav {
		nav[i].Active = nav[i].Href == r.URL.Path || (nav[i].Href == "/ui/" && strings.HasPrefix(r.URL.Path, "/ui/sagas/"))
	}
	return uiChrome{
		Title: title, Now: time.Now().UTC().Format(time.RFC3339), LiveURL: live, Nav: nav,
		Statuses: saga.Statuses, Modes: []string{saga.ModeChoreography, saga.ModeOrchestration}, Types: u.engine.Types(),
	}
}

// uiHeaders are the headers of every console page.
func uiHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	// Rendered whole before anything is sent, so that a template error is
	// a clean 500 rather than half a page.
	var b bytes.Buffer
	if err := uiTemplates.ExecuteTemplate(&b, name, data); err != nil {
		u.log.ErrorContext(r.Context(), "console render", "template", name, "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	uiHeaders(w)
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// asUIError maps an error to what the console answers: a refusal as is,
// anything else as storage being unavailable (logged).
func (u *UI) asUIError(r *http.Request, err error) *uiError {
	var ue *uiError
	if errors.As(err, &ue) {
		return ue
	}
	u.log.ErrorContext(r.Context(), "console: redis unavailable", "path", r.URL.Path, "err", err)
	return &uiError{status: http.StatusServiceUnavailable, code: "unavailable", msg: "storage is unavailable; the page retries", unavailable: true}
}

func (u *UI) renderError(w http.ResponseWriter, r *http.Request, err error) {
	ue := u.asUIError(r, err)
	if ue.unavailable {
		w.Header().Set("Retry-After", "1")
	}
	page := u.chrome(r, http.StatusText(ue.status), "")
	page.Query = r.URL.Query().Get("q")
	u.render(w, r, ue.status, "error.html", uiRoot{Page: page, V: struct {
		Status  int
		Message string
	}{ue.status, ue.msg}})
}

func (u *UI) jsonError(w http.ResponseWriter, r *http.Request, err error) {
	ue := u.asUIError(r, err)
	if ue.unavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, ue.status, ue.code, ue.msg)
}

// static serves an embedded file; the ETag lets a browser revalidate it.
func (u *UI) static(w http.ResponseWriter, r *http.Request) {
	a, ok := uiAssets[r.PathValue("file")]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such file")
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// search finds a saga by its id or by its order's id.
func (u *UI) search(w http.ResponseWriter, r *http.Request) {
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	if q == "" {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	if !saga.ValidID(q) {
		u.renderError(w, r, uiBad("invalid_id", "search takes a saga id or an order id (a UUID)"))
		return
	}
	ctx := r.Context()
	_, err := u.engine.Status(ctx, q)
	if err == nil {
		http.Redirect(w, r, "/ui/sagas/"+q, http.StatusSeeOther)
		return
	}
	if !errors.Is(err, saga.ErrNotFound) {
		u.renderError(w, r, err)
		return
	}
	o, err := u.orders.Get(ctx, q)
	switch {
	case errors.Is(err, handlers.ErrNotFound):
		u.renderError(w, r, uiNotFound("no saga and no order has the id "+q))
	case err != nil:
		u.renderError(w, r, err)
	default:
		http.Redirect(w, r, "/ui/sagas/"+o.SagaID, http.StatusSeeOther)
	}
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05.000")
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
}

// shortID is a UUID cut to its start and end, for tables; the full id is
// in the link and its title.
func shortID(id string) string {
	if len(id) <= 16 {
		return id
	}
	return id[:8] + "…" + id[len(id)-4:]
}

func shortDuration(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	}
	return d.Round(time.Millisecond).String()
}
