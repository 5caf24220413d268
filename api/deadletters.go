package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/streamsaga/streamsaga/internal/deadletter"
)

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
	writeJSON(w, http.StatusOK, map[string]any{"deadletters": letters})
}

// partitionParam reads ?partition=, the dead-letter stream to look in:
// deadletter.AnyPartition when absent. Its range is deadletter.Find's to
// check (ErrBadPartition).
func (a *API) partitionParam(r *http.Request) (int, *requestError) {
	q := r.URL.Query()
	if _, ok := q["partition"]; !ok {
		return deadletter.AnyPartition, nil
	}
	n, err := strconv.Atoi(q.Get("partition"))
	if err != nil || n < 0 {
		return 0, a.partitionRange()
	}
	return n, nil
}

// partitionRange is the 400 of a partition that is not 0..SAGA_PARTITIONS-1.
func (a *API) partitionRange() *requestError {
	n := a.engine.Keys().Partitions
	return badRequest("invalid_partition", "partition", fmt.Sprintf("partition must be a whole number from 0 to %d (SAGA_PARTITIONS-1)", n-1))
}

// findDeadLetter answers 404 for an id that is not a stream entry id, like
// the saga and order routes do for a malformed id: no resource has it.
func (a *API) findDeadLetter(w http.ResponseWriter, r *http.Request, advice string) (*deadletter.Letter, bool) {
	id := r.PathValue("id")
	if !deadletter.ValidID(id) {
		writeError(w, http.StatusNotFound, "not_found", "no such dead letter (ids look like 1700000000000-0)")
		return nil, false
	}
	p, rerr := a.partitionParam(r)
	if rerr != nil {
		writeRequestError(w, rerr)
		return nil, false
	}
	d, err := deadletter.Find(r.Context(), a.rdb, a.engine.Keys(), id, p)
	if err != nil {
		a.deadLetterError(w, r, err, advice)
		return nil, false
	}
	return d, true
}

// deadLetterError answers a failed dead-letter lookup or replay.
func (a *API) deadLetterError(w http.ResponseWriter, r *http.Request, err error, advice string) {
	switch {
	case errors.Is(err, deadletter.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such dead letter")
	case errors.Is(err, deadletter.ErrBadPartition):
		writeRequestError(w, a.partitionRange())
	case errors.Is(err, deadletter.ErrAmbiguous):
		writeError(w, http.StatusConflict, "ambiguous_id", err.Error()+"; pass ?partition= to name one")
	case errors.Is(err, deadletter.ErrCannotReplay):
		writeError(w, http.StatusConflict, "cannot_replay", err.Error()+"; inspect it with sagactl dlq show")
	default:
		a.unavailable(w, r, err, advice)
	}
}

func (a *API) getDeadLetter(w http.ResponseWriter, r *http.Request) {
	if d, ok := a.findDeadLetter(w, r, adviceRead); ok {
		writeJSON(w, http.StatusOK, d)
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
	out, err := deadletter.Replay(r.Context(), a.rdb, a.engine.Keys(), d)
	if err != nil {
		a.deadLetterError(w, r, err, advice)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
