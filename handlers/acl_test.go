package handlers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/sagatest"
)

// aclRules is the ACL line the README documents: the product's user sees
// only saga:* keys and the commands it needs.
const aclRules = "on >s3cret-pw resetkeys ~saga:* resetchannels -@all +@read +@write +@stream +@hash +@sortedset " +
	"+@keyspace +@scripting +@connection -@dangerous +client|id +client|unblock +client|setname +time"

// The product runs with a Redis ACL user restricted to saga:* and the
// commands it needs; that user can do nothing else.
func TestRunsAsRestrictedACLUser(t *testing.T) {
	t.Parallel()
	rs := redistest.StartT(t, redistest.Options{})
	admin := rs.Client()
	defer admin.Close()
	ctx := context.Background()
	if err := admin.Do(ctx, append([]any{"ACL", "SETUSER", "saga"}, toAny(strings.Fields(aclRules))...)...).Err(); err != nil {
		t.Fatal(err)
	}
	url := "redis://saga:s3cret-pw@" + rs.Addr() + "/0"
	s := sagatest.New(t, rs, map[string]string{"REDIS_URL": url, "SAGA_PREFIX": "saga"})
	s.StartAPI(nil)
	stop := s.StartWorker(nil)
	initial := map[string]int64{"sku-a": 10}
	s.SetStock("sku-a", 10)
	var placed []sagatest.Placed
	for _, price := range []int64{100, 200000} {
		o, err := s.PlaceOrder("c-acl", sagatest.I("sku-a", 1, price))
		if err != nil {
			t.Fatal(err)
		}
		placed = append(placed, o)
	}
	s.WaitFinished(placed, 10*time.Second)
	s.WaitAtRest(5 * time.Second)
	s.MustCheck(placed, initial)
	s.MustOutcomes(placed, []string{"COMPLETED", "CANCELLED"})
	began := time.Now()
	if err := stop(); err != nil || time.Since(began) > 3*time.Second {
		t.Errorf("worker stop under ACL: %v after %s (CLIENT UNBLOCK refused?)", err, time.Since(began))
	}

	user := redis.NewClient(&redis.Options{Addr: rs.Addr(), Username: "saga", Password: "s3cret-pw", Protocol: 2})
	defer user.Close()
	for name, cmd := range map[string][]any{
		"other key":    {"SET", "other:key", "1"},
		"KEYS":         {"KEYS", "*"},
		"FLUSHALL":     {"FLUSHALL"},
		"CONFIG":       {"CONFIG", "GET", "dir"},
		"CLIENT KILL":  {"CLIENT", "KILL", "ID", "1"},
		"ACL LIST":     {"ACL", "LIST"},
		"SAVE":         {"SAVE"},
		"script other": {"EVAL", "return redis.call('SET', KEYS[1], 1)", "1", "other:key"},
	} {
		if err := user.Do(ctx, cmd...).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("%s as the saga user: %v, want NOPERM", name, err)
		}
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
