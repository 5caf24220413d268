package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/internal/deadletter"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

// Page sizes of the console's lists.
const (
	uiDefaultPage = 25
	uiStreamPage  = 50
	// uiAlertWindow is how many of each partition's newest alerts are
	// counted by type.
	uiAlertWindow = 1000
)

// uiFilter is the saga list's query: what the filter form and the links
// carry.
type uiFilter struct {
	Status string `json:"status,omitempty"`
	Type   string `json:"type,omitempty"`
	Mode   string `json:"mode,omitempty"`
	Limit  int    `json:"limit"`
	After  string `json:"after,omitempty"`
}

// values is the filter as a query string, without the cursor unless asked.
func (f uiFilter) values(after string) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"status": f.Status, "type": f.Type, "mode": f.Mode, "after": after} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if f.Limit != uiDefaultPage {
		v.Set("limit", strconv.Itoa(f.Limit))
	}
	return v
}

func (f uiFilter) href(after string) string {
	if q := f.values(after).Encode(); q != "" {
		return "/ui/?" + q
	}
	return "/ui/"
}

func parseFilter(q url.Values) (uiFilter, error) {
	f := uiFilter{Status: strings.ToUpper(q.Get("status")), Type: q.Get("type"), Mode: strings.ToLower(q.Get("mode")),
		Limit: uiDefaultPage, After: q.Get("after")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > saga.MaxPageSize {
			return f, uiBad("invalid_limit", fmt.Sprintf("limit must be 1-%d", saga.MaxPageSize))
		}
		f.Limit = n
	}
	return f, nil
}

type uiCount struct {
	Status string `json:"status"`
	N      int64  `json:"n"`
	Href   string `json:"-"`
	Active bool   `json:"-"`
}

type uiSagaRow struct {
	SagaID    string    `json:"sagaId"`
	OrderID   string    `json:"orderId,omitempty"`
	Type      string    `json:"type"`
	Mode      string    `json:"mode"`
	Status    string    `json:"status"`
	Step      string    `json:"step"`
	UpdatedAt time.Time `json:"updatedAt"`
	Reason    string    `json:"reason,omitempty"`
}

type uiSagas struct {
	Filter     uiFilter    `json:"filter"`
	Counts     []uiCount   `json:"counts"`
	Failed     int64       `json:"failed"`
	DeadTotal  int64       `json:"deadLetters"`
	AlertTotal int64       `json:"alerts"`
	Sagas      []uiSagaRow `json:"sagas"`
	Next       string      `json:"next,omitempty"`
	NextHref   string      `json:"-"`
	FirstHref  string      `json:"-"`
	Limits     []int       `json:"-"`
}

func (u *UI) sagasView(r *http.Request) (*uiView, error) {
	ctx := r.Context()
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		return nil, err
	}
	q := saga.PageQuery{Type: f.Type, Mode: f.Mode, Limit: f.Limit, After: f.After}
	if f.Status != "" {
		q.Statuses = []string{f.Status}
	}
	page, err := u.engine.Page(ctx, q)
	if errors.Is(err, saga.ErrBadQuery) {
		return nil, uiBad("invalid_filter", strings.TrimPrefix(err.Error(), saga.ErrBadQuery.Error()+": "))
	}
	if err != nil {
		return nil, err
	}
	counts, err := u.engine.Counts(ctx)
	if err != nil {
		return nil, err
	}
	dead, alerts, err := u.streamTotals(ctx)
	if err != nil {
		return nil, err
	}
	v := &uiSagas{Filter: f, Limits: limitChoices(f.Limit), Counts: statusCards(f, counts), Failed: counts[saga.StatusFailed],
		DeadTotal: dead, AlertTotal: alerts, Sagas: []uiSagaRow{}, Next: page.Next}
	for _, st := range page.Sagas {
		v.Sagas = append(v.Sagas, uiSagaRow{SagaID: st.SagaID, OrderID: orderOf(st), Type: st.Type, Mode: st.Mode,
			Status: st.Status, Step: cmp.Or(st.StepName(st.CurrentStep), "-"), UpdatedAt: st.UpdatedAt, Reason: st.Reason})
	}
	if page.Next != "" {
		v.NextHref = f.href(page.Next)
	}
	if f.After != "" {
		v.FirstHref = f.href("")
	}
	return &uiView{name: "index", title: "sagas", data: v}, nil
}

// statusCards are the counts by status, each a link that filters by it
// (or, when it is the filter already, clears it).
func statusCards(f uiFilter, counts map[string]int64) []uiCount {
	out := make([]uiCount, 0, len(saga.Statuses))
	for _, s := range saga.Statuses {
		cf := f
		cf.Status = s
		if f.Status == s {
			cf.Status = ""
		}
		out = append(out, uiCount{Status: s, N: counts[s], Href: cf.href(""), Active: f.Status == s})
	}
	return out
}

// limitChoices are the page sizes the form offers, the current one among
// them.
func limitChoices(current int) []int {
	limits := []int{10, 25, 50, 100}
	if !slices.Contains(limits, current) {
		limits = slices.Sorted(slices.Values(append(limits, current)))
	}
	return limits
}

// streamTotals counts the dead letters and alerts of every partition.
func (u *UI) streamTotals(ctx context.Context) (dead, alerts int64, err error) {
	ks := u.engine.Keys()
	pipe := u.rdb.Pipeline()
	var d, a []*redis.IntCmd
	for p := range ks.Partitions {
		d = append(d, pipe.XLen(ctx, ks.DeadLetter(p)))
		a = append(a, pipe.XLen(ctx, ks.Alerts(p)))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, 0, fmt.Errorf("count dead letters and alerts: %w", err)
	}
	for i := range d {
		dead += d[i].Val()
		alerts += a[i].Val()
	}
	return dead, alerts, nil
}

// orderOf is the id of a saga's order record, if it has one.
func orderOf(st *saga.State) string {
	id, ok := strings.CutPrefix(st.Record, "order:")
	if !ok {
		return ""
	}
	return id
}

type uiStep struct {
	Index   int     `json:"index"`
	Name    string  `json:"name"`
	Status  string  `json:"status"`
	Current bool    `json:"current"`
	Result  []kv    `json:"result"`
	Comp    *uiComp `json:"compensation,omitempty"`
}

type uiComp struct {
	Status   string `json:"status"`
	Attempts int    `json:"attempts,omitempty"`
	Error    string `json:"error,omitempty"`
	Result   []kv   `json:"result"`
}

type uiHistory struct {
	Version int64     `json:"version"`
	At      time.Time `json:"at"`
	Offset  string    `json:"offset"`
	Type    string    `json:"type"`
	ID      string    `json:"id"`
	Back    bool      `json:"compensation"`
}

type uiSaga struct {
	SagaID         string      `json:"sagaId"`
	Type           string      `json:"type"`
	Mode           string      `json:"mode"`
	Status         string      `json:"status"`
	Reason         string      `json:"reason,omitempty"`
	FirstReason    string      `json:"firstReason,omitempty"`
	OrderID        string      `json:"orderId,omitempty"`
	Version        int64       `json:"version"`
	CreatedAt      time.Time   `json:"createdAt"`
	UpdatedAt      time.Time   `json:"updatedAt"`
	DeadlineAt     *time.Time  `json:"deadlineAt,omitempty"`
	SagaDeadlineAt *time.Time  `json:"sagaDeadlineAt,omitempty"`
	Took           string      `json:"took"`
	Context        []kv        `json:"context"`
	Steps          []uiStep    `json:"steps"`
	History        []uiHistory `json:"history"`
	Timeline       timeline    `json:"-"`
	Retry          bool        `json:"retryable"`
}

func (u *UI) sagaView(r *http.Request) (*uiView, error) {
	id := r.PathValue("id")
	if !saga.ValidID(id) {
		return nil, uiNotFound("no such saga")
	}
	st, err := u.engine.Get(r.Context(), id)
	if errors.Is(err, saga.ErrNotFound) {
		return nil, uiNotFound("no saga has the id " + id)
	}
	if err != nil {
		return nil, err
	}
	v := &uiSaga{SagaID: st.SagaID, Type: st.Type, Mode: st.Mode, Status: st.Status, Reason: st.Reason, FirstReason: st.FirstReason,
		OrderID: orderOf(st), Version: st.Version, CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt,
		DeadlineAt: st.DeadlineAt, SagaDeadlineAt: st.SagaDeadlineAt, Context: flatten(st.Context),
		Took: shortDuration(st.UpdatedAt.Sub(st.CreatedAt)), Retry: st.Status == saga.StatusFailed}
	if v.FirstReason == v.Reason {
		v.FirstReason = ""
	}
	for i, s := range st.Steps {
		step := uiStep{Index: i, Name: s.Name, Status: s.Status, Current: i == st.CurrentStep, Result: flatten(s.Result)}
		if c := s.Compensation; c != nil {
			step.Comp = &uiComp{Status: c.Status, Attempts: c.Attempts, Error: c.Error, Result: flatten(c.Result)}
		}
		v.Steps = append(v.Steps, step)
	}
	for _, h := range st.History {
		v.History = append(v.History, uiHistory{Version: h.Version, At: h.At, Offset: "+" + shortDuration(h.At.Sub(st.CreatedAt)),
			Type: h.Type, ID: h.ID, Back: u.engine.IsCompensation(h.Type)})
	}
	v.Timeline = layoutTimeline(st.CreatedAt, st.UpdatedAt, v.History)
	return &uiView{name: "saga", title: "saga " + id, data: v}, nil
}

// uiEntry is one alert or dead letter: the fields the tables show, and
// every other field as key–value rows.
type uiEntry struct {
	ID         string    `json:"id"`
	At         time.Time `json:"at"`
	Partition  int       `json:"partition"`
	Type       string    `json:"type"`
	SagaID     string    `json:"sagaId,omitempty"`
	Step       string    `json:"step,omitempty"`
	Group      string    `json:"group,omitempty"`
	Deliveries string    `json:"deliveries,omitempty"`
	Source     string    `json:"source,omitempty"`
	Error      string    `json:"error,omitempty"`
	Fields     []kv      `json:"fields"`
}

type uiEntries struct {
	Total      int64     `json:"total"`
	Entries    []uiEntry `json:"entries"`
	ByType     []uiCount `json:"byType,omitempty"`
	Before     string    `json:"before,omitempty"`
	Next       string    `json:"next,omitempty"`
	NextHref   string    `json:"-"`
	FirstHref  string    `json:"-"`
	Replayable bool      `json:"-"`
}

func (u *UI) alertsView(r *http.Request) (*uiView, error) {
	v, err := u.entries(r, "/ui/alerts", func(p int) string { return u.engine.Keys().Alerts(p) })
	if err != nil {
		return nil, err
	}
	byType := map[string]int64{}
	ks := u.engine.Keys()
	for p := range ks.Partitions {
		msgs, err := u.rdb.XRevRangeN(r.Context(), ks.Alerts(p), "+", "-", uiAlertWindow).Result()
		if err != nil {
			return nil, fmt.Errorf("read alerts: %w", err)
		}
		for _, m := range msgs {
			t, _ := m.Values["type"].(string)
			byType[t]++
		}
	}
	for _, t := range slices.Sorted(maps.Keys(byType)) {
		v.ByType = append(v.ByType, uiCount{Status: t, N: byType[t]})
	}
	return &uiView{name: "alerts", title: "alerts", data: v}, nil
}

func (u *UI) deadView(r *http.Request) (*uiView, error) {
	v, err := u.entries(r, "/ui/deadletters", func(p int) string { return u.engine.Keys().DeadLetter(p) })
	if err != nil {
		return nil, err
	}
	v.Replayable = true
	return &uiView{name: "deadletters", title: "dead letters", data: v}, nil
}

// entries reads a page of an operator stream (alerts or dead letters) over
// every partition, newest first, older than ?before=.
func (u *UI) entries(r *http.Request, base string, key func(p int) string) (*uiEntries, error) {
	ctx := r.Context()
	before := r.URL.Query().Get("before")
	if before != "" && !deadletter.ValidID(before) {
		return nil, uiBad("invalid_cursor", "before must be a stream entry id such as 1700000000000-0")
	}
	ks := u.engine.Keys()
	keys := make([]string, ks.Partitions)
	for p := range keys {
		keys[p] = key(p)
	}
	msgs, next, total, err := streamPage(ctx, u.rdb, keys, before, uiStreamPage)
	if err != nil {
		return nil, err
	}
	v := &uiEntries{Total: total, Entries: []uiEntry{}, Before: before, Next: next}
	for _, m := range msgs {
		v.Entries = append(v.Entries, toEntry(m))
	}
	if next != "" {
		v.NextHref = base + "?before=" + url.QueryEscape(next)
	}
	if before != "" {
		v.FirstHref = base
	}
	return v, nil
}

// shown are the fields an entry's table row shows in columns.
var shown = map[string]bool{"type": true, "saga_id": true, "step": true, "group": true, "deliveries": true,
	"source_stream": true, "error": true}

func toEntry(m partitionMessage) uiEntry {
	f := func(k string) string { s, _ := m.Values[k].(string); return s }
	e := uiEntry{ID: m.ID, At: deadletter.IDTime(m.ID), Partition: m.partition, Type: f("type"), SagaID: f("saga_id"), Step: f("step"),
		Group: f("group"), Deliveries: f("deliveries"), Source: f("source_stream"), Error: f("error"), Fields: []kv{}}
	for _, k := range slices.Sorted(maps.Keys(m.Values)) {
		if !shown[k] {
			e.Fields = append(e.Fields, flattenField(k, f(k))...)
		}
	}
	return e
}

type partitionMessage struct {
	redis.XMessage
	partition int
}

// streamPage reads up to n entries older than before (or the newest) from
// each key and merges them, newest first; next is the id to continue
// from, empty when nothing is left. Two partitions can hold the same id
// (same millisecond and sequence); a page boundary between such twins
// skips the second, a loss the console accepts for a cursor that stays
// a plain entry id.
func streamPage(ctx context.Context, rdb redis.UniversalClient, keys []string, before string, n int) (
	out []partitionMessage, next string, total int64, err error) {
	hi := "+"
	if before != "" {
		hi = "(" + before
	}
	pipe := rdb.Pipeline()
	ranges := make([]*redis.XMessageSliceCmd, len(keys))
	lens := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		ranges[i] = pipe.XRevRangeN(ctx, k, hi, "-", int64(n)+1)
		lens[i] = pipe.XLen(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", 0, fmt.Errorf("read %s: %w", keys[0], err)
	}
	for i := range keys {
		total += lens[i].Val()
		for _, m := range ranges[i].Val() {
			out = append(out, partitionMessage{m, i})
		}
	}
	slices.SortFunc(out, func(a, b partitionMessage) int { return deadletter.CompareIDs(b.ID, a.ID) })
	if len(out) > n {
		out = out[:n]
		next = out[n-1].ID
	}
	return out, next, total, nil
}

type uiGroup struct {
	Name      string `json:"name"`
	Pending   int64  `json:"pending"`
	Lag       int64  `json:"lag"`
	Consumers int64  `json:"consumers"`
}

type uiStream struct {
	Stream  string    `json:"stream"`
	Length  int64     `json:"length"`
	Pending int64     `json:"pending"`
	Lag     int64     `json:"lag"`
	Groups  []uiGroup `json:"groups"`
	Busy    bool      `json:"-"`
}

type uiStreams struct {
	All     bool       `json:"all"`
	Total   int        `json:"total"`
	Hidden  int        `json:"hidden"`
	Streams []uiStream `json:"streams"`
}

func (u *UI) streamsView(r *http.Request) (*uiView, error) {
	var all bool
	switch r.URL.Query().Get("all") {
	case "", "0", "false":
	case "1", "true":
		all = true
	default:
		return nil, uiBad("invalid_all", "all must be 1 or 0")
	}
	info, err := streams.Inspect(r.Context(), u.rdb, u.streams)
	if err != nil {
		return nil, err
	}
	v := &uiStreams{All: all, Total: len(info), Streams: []uiStream{}}
	for _, si := range info {
		s := uiStream{Stream: si.Stream, Length: si.Length, Groups: []uiGroup{}}
		for _, g := range si.Groups {
			s.Pending += g.Pending
			s.Lag += g.Lag
			s.Groups = append(s.Groups, uiGroup{Name: g.Name, Pending: g.Pending, Lag: g.Lag, Consumers: g.Consumers})
		}
		s.Busy = s.Pending > 0 || s.Lag > 0
		// An empty stream with nothing pending or unread says nothing.
		if !all && s.Length == 0 && !s.Busy {
			v.Hidden++
			continue
		}
		v.Streams = append(v.Streams, s)
	}
	return &uiView{name: "streams", title: "streams", data: v}, nil
}
