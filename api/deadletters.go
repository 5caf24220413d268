package api

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/streamsaga/streamsaga/internal/deadletter"
)

// deadLetterView is a dead letter as the API shows it: the entry with the
// time its id carries.
type deadLetterView struct {
	deadletter.Letter
	At time.Time `json:"at"`
}

func viewOf(d deadletter.Letter) deadLetterView {
	ms, _, _ := strings.Cut(d.ID, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return deadLetterView{Letter: d, At: time.UnixMilli(n).UTC()}
}

// compareIDs orders stream entry ids by time, then sequence.
func compareIDs(a, b string) int {
	split := func(id string) (uint64, uint64) {
		ms, seq, _ := strings.Cut(id, "-")
		m, _ := strconv.ParseUint(ms, 10, 64)
		s, _ := strconv.ParseUint(seq, 10, 64)
		return m, s
	}
	am, as := split(a)
	bm, bs := split(b)
	return cmp.Or(cmp.Compare(am, bm), cmp.Compare(as, bs))
}

func (a *API) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	limit, rerr := limitParam(r, 50)
	if rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	letters, err := deadletter.List(r.Context(), a.rdb, a.engine.Keys(), limit)
	if err != nil {
		a.unavailable(w, r, err, adviceRead)
		return
	}
	// List gives each partition's newest: merge them, newest first.
	slices.SortFunc(letters, func(x, y deadletter.Letter) int { return compareIDs(y.ID, x.ID) })
	out := make([]deadLetterView, 0, min(limit, len(letters)))
	for _, d := range letters[:min(limit, len(letters))] {
		out = append(out, viewOf(d))
	}
	writeJSON(w, http.StatusOK, map[string]any{"deadletters": out})
}

// findDeadLetter answers 404 for an id that is not a stream entry id, like
// the saga and order routes do for a malformed id: no resource has it.
func (a *API) findDeadLetter(w http.ResponseWriter, r *http.Request, advice string) (*deadletter.Letter, bool) {
	id := r.PathValue("id")
	if !deadletter.ValidID(id) {
		writeError(w, http.StatusNotFound, "not_found", "no such dead letter (ids look like 1700000000000-0)")
		return nil, false
	}
	d, err := deadletter.Find(r.Context(), a.rdb, a.engine.Keys(), id)
	if errors.Is(err, deadletter.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such dead letter")
		return nil, false
	}
	if err != nil {
		a.unavailable(w, r, err, advice)
		return nil, false
	}
	return d, true
}

func (a *API) getDeadLetter(w http.ResponseWriter, r *http.Request) {
	if d, ok := a.findDeadLetter(w, r, adviceRead); ok {
		writeJSON(w, http.StatusOK, viewOf(*d))
	}
}

// replayDeadLetter publishes a dead letter's entry on its stream again; the
// engine's fences still judge it, so a replay cannot apply a transition its
// saga no longer waits for.
func (a *API) replayDeadLetter(w http.ResponseWriter, r *http.Request) {
	const advice = "storage is unavailable; repeating this replay is safe: a dead letter already replayed answers 404"
	d, ok := a.findDeadLetter(w, r, advice)
	if !ok {
		return
	}
	ks := a.engine.Keys()
	if ks.PartitionOfKey(d.Fields["source_stream"]) != d.Partition {
		// Only a hand-written dead letter can name another partition's
		// stream (or none); deadletter.Replay refuses it too.
		writeError(w, http.StatusConflict, "cannot_replay", "this dead letter names no stream of its partition; inspect it with sagactl dlq show")
		return
	}
	out, err := deadletter.Replay(r.Context(), a.rdb, ks, d.ID)
	if errors.Is(err, deadletter.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such dead letter (replayed or removed meanwhile)")
		return
	}
	if err != nil {
		a.unavailable(w, r, err, advice)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
