package api

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

//go:embed ui/*.html
var uiFS embed.FS

var uiTemplates = template.Must(template.ParseFS(uiFS, "ui/*.html"))

// UI is the read-only dashboard at /ui/: counts by status, sagas with a
// status filter, alerts (failed sagas, lost sagas, rejected entries), dead
// letters, streams with their lag and pending entries, and one saga's
// timeline drawn as SVG. No JavaScript.
type UI struct {
	rdb     redis.UniversalClient
	engine  *saga.Engine
	streams []string // every stream to show
}

// NewUI returns the dashboard over the given streams.
func NewUI(rdb redis.UniversalClient, engine *saga.Engine, streamKeys []string) *UI {
	return &UI{rdb: rdb, engine: engine, streams: streamKeys}
}

// register adds the console's routes.
func (u *UI) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /ui/{$}", u.index)
	mux.HandleFunc("GET /ui/sagas/{id}", u.saga)
}

type uiPage struct {
	Title    string
	Statuses []string
	Now      string
}

type uiSagaRow struct {
	SagaID, Mode, Status, Step, Updated, Reason string
}

type uiDead struct {
	ID, Group, Type, SagaID, Deliveries, Error string
}

type uiAlert struct {
	ID, Type, SagaID, Error string
}

func (u *UI) index(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	filter := strings.ToUpper(r.URL.Query().Get("status"))
	statuses, ok := statusFilter(filter)
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_status", "unknown status")
		return
	}
	ks := u.engine.Keys()
	type count struct {
		Status string
		N      int64
	}
	var counts []count
	for _, s := range saga.Statuses {
		var n int64
		for p := range ks.Partitions {
			n += u.rdb.ZCard(ctx, ks.Index(p, s)).Val()
		}
		counts = append(counts, count{s, n})
	}
	list, err := u.engine.List(ctx, statuses, 50)
	if err != nil {
		http.Error(w, "redis unavailable", http.StatusServiceUnavailable)
		return
	}
	rows := make([]uiSagaRow, 0, len(list))
	for _, s := range list {
		step := "-"
		if s.CurrentStep >= 0 && s.CurrentStep < len(s.Steps) {
			step = s.Steps[s.CurrentStep].Name
		}
		rows = append(rows, uiSagaRow{s.SagaID, s.Mode, s.Status, step, s.UpdatedAt.Format("15:04:05.000"), s.Reason})
	}
	info, err := streams.Inspect(ctx, u.rdb, u.streams)
	if err != nil {
		http.Error(w, "redis unavailable", http.StatusServiceUnavailable)
		return
	}
	var dead []uiDead
	var alerts []uiAlert
	alertCounts := map[string]int64{}
	for p := range ks.Partitions {
		msgs, _ := u.rdb.XRevRangeN(ctx, ks.DeadLetter(p), "+", "-", 20).Result()
		for _, m := range msgs {
			f := func(k string) string { s, _ := m.Values[k].(string); return s }
			dead = append(dead, uiDead{m.ID, f("group"), f("type"), f("saga_id"), f("deliveries"), f("error")})
		}
		// The newest alerts are listed, and counted by type over the last
		// thousand: forgeries (entry.rejected) and lost sagas (saga.missing)
		// stand out next to failed compensations.
		msgs, _ = u.rdb.XRevRangeN(ctx, ks.Alerts(p), "+", "-", 1000).Result()
		for i, m := range msgs {
			f := func(k string) string { s, _ := m.Values[k].(string); return s }
			alertCounts[f("type")]++
			if i < 20 {
				alerts = append(alerts, uiAlert{m.ID, f("type"), f("saga_id"), f("error")})
			}
		}
	}
	type alertCount struct {
		Type string
		N    int64
	}
	var byType []alertCount
	for _, typ := range slices.Sorted(maps.Keys(alertCounts)) {
		byType = append(byType, alertCount{typ, alertCounts[typ]})
	}
	u.render(w, "index.html", struct {
		uiPage
		Counts      []count
		Filter      string
		Sagas       []uiSagaRow
		Streams     []streams.StreamInfo
		Dead        []uiDead
		Alerts      []uiAlert
		AlertCounts []alertCount
	}{u.page(""), counts, filter, rows, info, dead, alerts, byType})
}

type uiMark struct {
	X, TextX, Y int
	Type, At    string
	Color       string
}

func (u *UI) saga(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		http.NotFound(w, r)
		return
	}
	st, err := u.engine.Get(r.Context(), id)
	if errors.Is(err, saga.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, "redis unavailable", http.StatusServiceUnavailable)
		return
	}
	const left, right, rowH = 20, 880, 18
	span := st.UpdatedAt.Sub(st.CreatedAt)
	for _, h := range st.History {
		span = max(span, h.At.Sub(st.CreatedAt))
	}
	marks := make([]uiMark, 0, len(st.History))
	for i, h := range st.History {
		d := h.At.Sub(st.CreatedAt)
		x := left
		if span > 0 {
			x = left + int(float64(right-left)*float64(d)/float64(span))
		}
		color := "#1a7f37"
		if u.engine.IsCompensation(h.Type) {
			color = "#cf222e"
		}
		textX := x + 8
		if x > right-220 {
			textX = x - 220
		}
		marks = append(marks, uiMark{X: x, TextX: textX, Y: 20 + i*rowH, Type: h.Type, At: shortDuration(d), Color: color})
	}
	axis := 20 + len(marks)*rowH + 12
	u.render(w, "saga.html", struct {
		uiPage
		Saga                       *saga.State
		Marks                      []uiMark
		Width, Height, Left, Right int
		Axis, AxisLabel            int
		Span                       string
	}{u.page(id), st, marks, right + 40, axis + 36, left, right, axis, axis + 20, shortDuration(span)})
}

func shortDuration(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	}
	return d.Round(time.Millisecond).String()
}

func (u *UI) page(title string) uiPage {
	return uiPage{Title: title, Statuses: saga.Statuses, Now: time.Now().UTC().Format(time.RFC3339)}
}

func (u *UI) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'")
	if err := uiTemplates.ExecuteTemplate(w, name, data); err != nil {
		http.Error(w, "render failed", http.StatusInternalServerError)
	}
}
