package saga

import (
	"context"
	"testing"

	"github.com/streamsaga/streamsaga/internal/redistest"
)

// The barrier that applies writes on another slot (effect.lua), phase by
// phase: an execution applies once; a compensation undoes only an execution
// that took effect, once; a compensation that comes first writes nothing and
// blocks the execution for good; a finalisation applies once, never after a
// compensation; takes are all or nothing, and add up on one field.
func TestEffectBarrier(t *testing.T) {
	srv := redistest.StartT(t, redistest.Options{})
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	e, err := New(rdb, Options{Prefix: redistest.Prefix()}, gearSaga())
	if err != nil {
		t.Fatal(err)
	}
	pool := e.keys.Shared("shop", "stock")
	rdb.HSet(ctx, pool, "a", 10)
	take := func(n int64) []resolvedWrite {
		return []resolvedWrite{{Write: Take(Shared("shop", "stock"), "a", n, "short"), key: pool}}
	}
	give := func(n int64) []resolvedWrite {
		return []resolvedWrite{{Write: HIncrBy(Shared("shop", "stock"), "a", n), key: pool}}
	}
	stock := func() string { return rdb.HGet(ctx, pool, "a").Val() }
	run := func(saga string, phase Phase, ws []resolvedWrite) effectResult {
		t.Helper()
		r, err := e.effect(ctx, "shop", saga, "pay", phase, ws)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Executed twice, compensated twice: once each.
	if r := run("s1", Execute, take(3)); r.code != "OK" {
		t.Fatalf("execute: %+v", r)
	}
	if r := run("s1", Execute, take(3)); r.code != "DONE" || stock() != "7" {
		t.Fatalf("execute again: %+v, stock %s", r, stock())
	}
	if r := run("s1", Compensate, give(3)); r.code != "OK" || stock() != "10" {
		t.Fatalf("compensate: %+v, stock %s", r, stock())
	}
	if r := run("s1", Compensate, give(3)); r.code != "DONE" || stock() != "10" {
		t.Fatalf("compensate again: %+v, stock %s", r, stock())
	}
	if r := run("s1", Finalize, give(100)); r.code != "NULL" || stock() != "10" {
		t.Fatalf("finalize after compensation: %+v, stock %s", r, stock())
	}
	// A compensation first: nothing to undo, and the late execution is
	// blocked for good.
	if r := run("s2", Compensate, give(4)); r.code != "NULL" || stock() != "10" {
		t.Fatalf("null compensation: %+v, stock %s", r, stock())
	}
	if r := run("s2", Execute, take(4)); r.code != "BLOCKED" || stock() != "10" {
		t.Fatalf("execution after its compensation: %+v, stock %s", r, stock())
	}
	// Takes add up: two of 6 on a field of 10 fail together, and the
	// failure is the recorded outcome.
	both := append(take(6), take(6)...)
	if r := run("s3", Execute, both); r.code != "FAIL" || r.reason != "short" || stock() != "10" {
		t.Fatalf("two takes of 6 from 10: %+v, stock %s", r, stock())
	}
	if r := run("s3", Execute, take(1)); r.code != "DONE" || r.reason != "fail|short" || stock() != "10" {
		t.Fatalf("a failed execution again: %+v, stock %s", r, stock())
	}
	// Finalised once; the barrier of a live execution never expires, and
	// expires once the step is final.
	run("s4", Execute, take(2))
	if ttl := rdb.TTL(ctx, e.keys.Barrier("shop", "s4")).Val(); ttl != -1 {
		t.Fatalf("a live execution's barrier has TTL %v", ttl)
	}
	if r := run("s4", Finalize, give(1)); r.code != "OK" || stock() != "9" {
		t.Fatalf("finalize: %+v, stock %s", r, stock())
	}
	if r := run("s4", Finalize, give(1)); r.code != "DONE" || stock() != "9" {
		t.Fatalf("finalize again: %+v, stock %s", r, stock())
	}
	if ttl := rdb.TTL(ctx, e.keys.Barrier("shop", "s4")).Val(); ttl <= 0 {
		t.Fatalf("a final step's barrier has TTL %v", ttl)
	}
}
