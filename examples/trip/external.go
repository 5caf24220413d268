package trip

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/redis/go-redis/v9"
)

//go:embed external.lua
var externalLua string

var externalScript = redis.NewScript(externalLua)

// External is a fake system outside the saga's Redis writes, with the
// contract a checked step needs: idempotent under the caller's key, and a
// cancellation that comes first blocks the booking. Its state lives in
// Redis under its own name, so tests can reconcile it.
type External struct {
	RDB  redis.UniversalClient
	Name string // e.g. "trip:{hotels}"
}

// Book books for the key; false means the system refused.
func (x *External) Book(ctx context.Context, key, what string) (bool, error) {
	st, err := x.call(ctx, "book", key, what)
	return st == "booked", err
}

// Cancel cancels the key's booking, or blocks it if none was made.
func (x *External) Cancel(ctx context.Context, key string) error {
	_, err := x.call(ctx, "cancel", key, "")
	return err
}

// Refuse makes the system refuse what (a hotel, a traveller) from now on.
func (x *External) Refuse(ctx context.Context, what string) error {
	return x.RDB.SAdd(ctx, x.Name+":refuse", what).Err()
}

// Bookings returns every key's booking state.
func (x *External) Bookings(ctx context.Context) (map[string]string, error) {
	return x.RDB.HGetAll(ctx, x.Name+":bookings").Result()
}

// Counters returns how many bookings were made and cancelled.
func (x *External) Counters(ctx context.Context) (map[string]string, error) {
	return x.RDB.HGetAll(ctx, x.Name+":counters").Result()
}

func (x *External) call(ctx context.Context, op, key, what string) (string, error) {
	st, err := externalScript.Run(ctx, x.RDB, []string{x.Name + ":bookings", x.Name + ":refuse", x.Name + ":counters"}, op, key, what).Text()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", x.Name, op, err)
	}
	return st, nil
}
