package sagatest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// The checker is independent of the product on purpose: it knows the Redis
// layout of SPEC section 3 as a person with redis-cli does, reads it with
// raw commands, and computes what must hold from what the test itself
// placed. It imports nothing of the product, so a bug in the product's
// decoding or bookkeeping cannot hide itself from the check.

// Outcomes of an order as the checker derives them from Redis.
const (
	Completed = "COMPLETED"
	Cancelled = "CANCELLED"
	Failed    = "FAILED"
)

// Placed is an order a test placed, as the test itself knows it.
type Placed struct {
	OrderID string
	SagaID  string
	// Items are what the test sent; the checker computes the order's total
	// from them, never from what the product stored.
	Items []Item
	// Want is the outcome the test expects (Completed, Cancelled, Failed);
	// empty accepts any terminal outcome.
	Want string
}

// Total is the order's total as the test computes it.
func (p Placed) Total() int64 {
	var t int64
	for _, it := range p.Items {
		t += it.Quantity * it.UnitPriceCents
	}
	return t
}

// Report is what Check found.
type Report struct {
	ByStatus map[string]int // outcome → count
	Problems []string
}

// Err returns the problems as one error, or nil.
func (r *Report) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(r.Problems, "\n"))
}

func (r *Report) fail(format string, args ...any) {
	if len(r.Problems) < 50 {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// Checker verifies SPEC section 9 from raw Redis reads under one key prefix.
type Checker struct {
	RDB    redis.UniversalClient
	Prefix string

	mu    sync.Mutex
	where map[string]string // order or saga id → its key, found by SCAN
}

// NewChecker returns a checker of the keys under prefix.
func NewChecker(rdb redis.UniversalClient, prefix string) *Checker {
	return &Checker{RDB: rdb, Prefix: prefix, where: map[string]string{}}
}

// Keys outside the saga partitions, by their documented names: the fake
// gateway's ledger per saga and totals, the stock, and a saga's barrier in
// the inventory's slot (which of its stock writes were applied).
func (c *Checker) ledgerKey(sagaID string) string { return c.Prefix + ":{payment}:ledger:" + sagaID }
func (c *Checker) gatewayTotals() string          { return c.Prefix + ":{payment}:totals" }
func (c *Checker) available() string              { return c.Prefix + ":{inventory}:available" }
func (c *Checker) reserved() string               { return c.Prefix + ":{inventory}:reserved" }
func (c *Checker) barrierKey(sagaID string) string {
	return c.Prefix + ":{inventory}:barrier:" + sagaID
}

// partitionOf returns the partition tag of a key "<prefix>:{N}:…", or "".
func (c *Checker) partitionOf(key string) string {
	rest, ok := strings.CutPrefix(key, c.Prefix+":{")
	if !ok {
		return ""
	}
	n, _, ok := strings.Cut(rest, "}")
	if _, err := strconv.Atoi(n); !ok || err != nil {
		return ""
	}
	return n
}

// scan lists every key under the prefix (on every master of a cluster);
// with typ set, only keys of that type.
func (c *Checker) scan(ctx context.Context, typ string) ([]string, error) {
	var mu sync.Mutex
	var keys []string
	one := func(ctx context.Context, rdb redis.Cmdable) error {
		var cursor uint64
		for {
			var batch []string
			var err error
			if typ == "" {
				batch, cursor, err = rdb.Scan(ctx, cursor, c.Prefix+":*", 1000).Result()
			} else {
				batch, cursor, err = rdb.ScanType(ctx, cursor, c.Prefix+":*", 1000, typ).Result()
			}
			if err != nil {
				return fmt.Errorf("scan: %w", err)
			}
			mu.Lock()
			keys = append(keys, batch...)
			mu.Unlock()
			if cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := c.RDB.(*redis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return one(ctx, n) })
		return keys, err
	}
	return keys, one(ctx, c.RDB)
}

// locate finds the order record and saga hash keys of the orders, scanning
// once for those not seen before (keys never move, so they are cached).
func (c *Checker) locate(ctx context.Context, orders []Placed) error {
	c.mu.Lock()
	missing := false
	for _, o := range orders {
		if c.where["order:"+o.OrderID] == "" || c.where["saga:"+o.SagaID] == "" {
			missing = true
			break
		}
	}
	c.mu.Unlock()
	if !missing {
		return nil
	}
	keys, err := c.scan(ctx, "")
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		p := c.partitionOf(k)
		if p == "" {
			continue
		}
		rest := strings.TrimPrefix(k, c.Prefix+":{"+p+"}:")
		if kind, id, ok := strings.Cut(rest, ":"); ok && (kind == "order" || kind == "saga") && !strings.Contains(id, ":") {
			c.where[kind+":"+id] = k
		}
	}
	return nil
}

func (c *Checker) key(kind, id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.where[kind+":"+id]
}

// view is one order as the checker reads it.
type view struct {
	o                  Placed
	order, saga        map[string]string
	ledger, barrier    map[string]string
	outcome            string // Completed, Cancelled, Failed, or "" when not terminal
	orderKey, sagaKey  string
	partition          string
	orderSt, sagaState string
}

// read reads each order's record, saga hash, ledger, shipment and
// reservation, pipelined.
func (c *Checker) read(ctx context.Context, orders []Placed, withRecords bool) ([]*view, error) {
	if err := c.locate(ctx, orders); err != nil {
		return nil, err
	}
	views := make([]*view, len(orders))
	for start := 0; start < len(orders); start += 200 {
		end := min(start+200, len(orders))
		pipe := c.RDB.Pipeline()
		type cmds struct{ order, saga, ledger, barrier *redis.MapStringStringCmd }
		cs := make([]cmds, end-start)
		for i, o := range orders[start:end] {
			v := &view{o: o, orderKey: c.key("order", o.OrderID), sagaKey: c.key("saga", o.SagaID)}
			v.partition = c.partitionOf(v.orderKey)
			views[start+i] = v
			if v.orderKey != "" {
				cs[i].order = pipe.HGetAll(ctx, v.orderKey)
			}
			if v.sagaKey != "" {
				cs[i].saga = pipe.HGetAll(ctx, v.sagaKey)
			}
			if withRecords {
				cs[i].ledger = pipe.HGetAll(ctx, c.ledgerKey(o.SagaID))
				cs[i].barrier = pipe.HGetAll(ctx, c.barrierKey(o.SagaID))
			}
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read orders: %w", err)
		}
		for i := range cs {
			v := views[start+i]
			get := func(cmd *redis.MapStringStringCmd) map[string]string {
				if cmd == nil {
					return map[string]string{}
				}
				return cmd.Val()
			}
			v.order, v.saga = get(cs[i].order), get(cs[i].saga)
			v.ledger, v.barrier = get(cs[i].ledger), get(cs[i].barrier)
			v.orderSt, v.sagaState = v.order["status"], v.saga["status"]
			switch {
			case v.orderSt == "COMPLETED" && v.sagaState == "COMPLETED":
				v.outcome = Completed
			case v.orderSt == "CANCELLED" && v.sagaState == "COMPENSATED":
				v.outcome = Cancelled
			case v.orderSt == "PENDING" && v.sagaState == "FAILED", v.orderSt == "FAILED":
				v.outcome = Failed
			}
		}
	}
	return views, nil
}

// Unfinished counts the orders not yet in a final state (an order that is
// not found counts as unfinished).
func (c *Checker) Unfinished(ctx context.Context, orders []Placed) (int, error) {
	views, err := c.read(ctx, orders, false)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range views {
		if v.outcome == "" {
			n++
		}
	}
	return n, nil
}

// Outcomes returns each order's outcome ("" while not terminal).
func (c *Checker) Outcomes(ctx context.Context, orders []Placed) ([]string, error) {
	views, err := c.read(ctx, orders, false)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(views))
	for i, v := range views {
		out[i] = v.outcome
	}
	return out, nil
}

// Check verifies, at rest, SPEC section 9 for the orders the test placed
// and the stock each SKU was set to before: every order terminal and as
// the test wanted; money per order and in the gateway's totals; stock per
// SKU; one live shipment per completed order and none for the others; every
// key of a finished saga with a TTL; no deadline left; every FAILED saga
// alerted; every group of every stream with nothing pending or unread.
//
// It assumes these orders are the only ones under the prefix (the gateway's
// and the shipping service's totals are compared with their sums).
func (c *Checker) Check(ctx context.Context, orders []Placed, initial map[string]int64) (*Report, error) {
	r := &Report{ByStatus: map[string]int{}}
	views, err := c.read(ctx, orders, true)
	if err != nil {
		return nil, err
	}
	alerted, err := c.alertedSagas(ctx)
	if err != nil {
		return nil, err
	}
	completedUnits := map[string]int64{}
	var completed int64
	var finished []string // ids of finished sagas and their orders
	for _, v := range views {
		o := v.o
		if v.orderKey == "" {
			r.fail("order %s: no record in Redis", o.OrderID)
			continue
		}
		if v.order["saga_id"] != o.SagaID {
			r.fail("order %s: record names saga %q, the API answered %s", o.OrderID, v.order["saga_id"], o.SagaID)
		}
		if v.sagaKey != "" && v.partition != c.partitionOf(v.sagaKey) {
			r.fail("order %s and its saga are in different partitions", o.OrderID)
		}
		if v.outcome == "" {
			r.fail("order %s is %q and its saga %q: not terminal", o.OrderID, v.orderSt, v.sagaState)
			continue
		}
		r.ByStatus[v.outcome]++
		if o.Want != "" && v.outcome != o.Want {
			r.fail("order %s ended %s (%s), want %s", o.OrderID, v.outcome, v.order["reason"]+v.saga["reason"], o.Want)
		}
		charged, refunded := cents(v.ledger, "charge", "charged", "charged_cents"), cents(v.ledger, "refund", "refunded", "refunded_cents")
		if v.ledger["charge"] == "charged" && charged != o.Total() {
			r.fail("order %s: charged %d¢, its total is %d¢", o.OrderID, charged, o.Total())
		}
		net := charged - refunded
		switch v.outcome {
		case Completed:
			completed++
			if net != o.Total() {
				r.fail("order %s COMPLETED: charged−refunded = %d¢, total %d¢", o.OrderID, net, o.Total())
			}
			for _, it := range o.Items {
				completedUnits[it.SKU] += it.Quantity
			}
			if v.saga["shipping.status"] != "created" {
				r.fail("order %s COMPLETED without a live shipment (shipping.status %q)", o.OrderID, v.saga["shipping.status"])
			}
		case Cancelled:
			if net != 0 {
				r.fail("order %s CANCELLED: charged−refunded = %d¢, want 0", o.OrderID, net)
			}
		case Failed:
			if net != 0 && net != o.Total() {
				r.fail("order %s FAILED: charged−refunded = %d¢, neither 0 nor the total", o.OrderID, net)
			}
			if !alerted[o.SagaID] {
				r.fail("order %s FAILED without an alert for saga %s", o.OrderID, o.SagaID)
			}
		}
		if v.outcome != Completed && v.saga["shipping.status"] == "created" {
			r.fail("order %s %s has a live shipment", o.OrderID, v.outcome)
		}
		// The reservation was applied (reserveStock.execute) and neither
		// released (compensate) nor consumed (finalize): still held.
		if b := v.barrier; b["reserveStock.execute"] == "ok" && b["reserveStock.compensate"] != "done" && b["reserveStock.finalize"] != "done" {
			r.fail("order %s %s: its reservation is still held (%v)", o.OrderID, v.outcome, b)
		}
		// On one Redis the reservation went with the saga's transitions (no
		// barrier): a cancelled order's reservation was released with them.
		if len(v.barrier) == 0 && v.outcome == Cancelled && v.saga["step.2.status"] == "COMPLETED" {
			r.fail("order %s CANCELLED with its reservation still held", o.OrderID)
		}
		if v.outcome != Failed {
			finished = append(finished, o.SagaID, o.OrderID)
		}
		checkSteps(r, v)
	}
	if err := c.checkTotals(ctx, r, completed); err != nil {
		return nil, err
	}
	if err := c.checkStock(ctx, r, initial, completedUnits); err != nil {
		return nil, err
	}
	if err := c.checkTTLs(ctx, r, finished); err != nil {
		return nil, err
	}
	if err := c.checkDeadlines(ctx, r); err != nil {
		return nil, err
	}
	problems, _, err := c.AtRest(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range problems {
		r.fail("%s", p)
	}
	return r, nil
}

// cents reads a ledger amount that counts only when its field says it
// happened.
func cents(h map[string]string, field, happened, amount string) int64 {
	if h[field] != happened {
		return 0
	}
	n, _ := strconv.ParseInt(h[amount], 10, 64)
	return n
}

// checkTotals compares the gateway's and shipping's running totals with
// what the checker sums over every ledger and shipment under the prefix: a
// charge, refund or shipment applied twice shows as a difference.
func (c *Checker) checkTotals(ctx context.Context, r *Report, completed int64) error {
	ledgers, err := c.hashes(ctx, ":{payment}:ledger:")
	if err != nil {
		return err
	}
	var charges, chargedCents, refunds, refundedCents int64
	for key, l := range ledgers {
		if l["charge"] == "charged" {
			charges++
			chargedCents += cents(l, "charge", "charged", "charged_cents")
		}
		if l["refund"] == "refunded" {
			refunds++
			refundedCents += cents(l, "refund", "refunded", "refunded_cents")
			if l["charge"] != "charged" {
				r.fail("%s: refunded without a charge", key)
			}
			if l["refunded_cents"] != l["charged_cents"] {
				r.fail("%s: refunded %s¢ of a %s¢ charge", key, l["refunded_cents"], l["charged_cents"])
			}
		}
	}
	t, err := c.RDB.HGetAll(ctx, c.gatewayTotals()).Result()
	if err != nil {
		return fmt.Errorf("gateway totals: %w", err)
	}
	got := [4]int64{num(t["charges"]), num(t["charged_cents"]), num(t["refunds"]), num(t["refunded_cents"])}
	if want := [4]int64{charges, chargedCents, refunds, refundedCents}; got != want {
		r.fail("gateway totals (charges, charged¢, refunds, refunded¢) %v, the ledgers sum to %v: an effect was applied twice", got, want)
	}
	// Shipments are fields of each saga's hash; the shipping service counts
	// them per partition.
	sagas, err := c.hashes(ctx, ":saga:")
	if err != nil {
		return err
	}
	var created, cancelled int64
	for _, h := range sagas {
		switch {
		case h["shipping.status"] == "created":
			created++
		case h["shipping.status"] == "cancelled" && h["shipping.shipment_id"] != "":
			cancelled++
		}
	}
	totals, err := c.hashes(ctx, ":shipping.totals")
	if err != nil {
		return err
	}
	var shipments, cancellations int64
	for _, t := range totals {
		shipments += num(t["shipments"])
		cancellations += num(t["cancellations"])
	}
	if shipments != created+cancelled || cancellations != cancelled {
		r.fail("shipping totals: %d shipments, %d cancellations; the sagas hold %d live and %d cancelled", shipments, cancellations, created, cancelled)
	}
	if created != completed {
		r.fail("%d live shipments for %d completed orders", created, completed)
	}
	return nil
}

// hashes reads every hash under the prefix whose key contains part.
func (c *Checker) hashes(ctx context.Context, part string) (map[string]map[string]string, error) {
	keys, err := c.scan(ctx, "hash")
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	pipe := c.RDB.Pipeline()
	cmds := map[string]*redis.MapStringStringCmd{}
	for _, k := range keys {
		if strings.Contains(k, part) {
			cmds[k] = pipe.HGetAll(ctx, k)
		}
	}
	if len(cmds) == 0 {
		return out, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read hashes %s: %w", part, err)
	}
	for k, cmd := range cmds {
		out[k] = cmd.Val()
	}
	return out, nil
}

func num(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// checkStock: for each SKU, available + units of completed orders = the
// initial stock, nothing reserved, nothing negative.
func (c *Checker) checkStock(ctx context.Context, r *Report, initial, completedUnits map[string]int64) error {
	skus := slices.Sorted(func(yield func(string) bool) {
		for s := range initial {
			if !yield(s) {
				return
			}
		}
	})
	if len(skus) == 0 {
		return nil
	}
	avail, err := c.RDB.HMGet(ctx, c.available(), skus...).Result()
	if err != nil {
		return fmt.Errorf("stock: %w", err)
	}
	res, err := c.RDB.HMGet(ctx, c.reserved(), skus...).Result()
	if err != nil {
		return fmt.Errorf("stock: %w", err)
	}
	for i, sku := range skus {
		a, _ := avail[i].(string)
		rs, _ := res[i].(string)
		if num(a)+completedUnits[sku] != initial[sku] {
			r.fail("sku %s: available %s + completed %d != initial %d", sku, a, completedUnits[sku], initial[sku])
		}
		if num(rs) != 0 {
			r.fail("sku %s: %s units still reserved at rest", sku, rs)
		}
		if num(a) < 0 {
			r.fail("sku %s: available is negative (%s)", sku, a)
		}
	}
	return nil
}

// checkTTLs: every key named after a finished saga or its order expires.
func (c *Checker) checkTTLs(ctx context.Context, r *Report, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	keys, err := c.scan(ctx, "")
	if err != nil {
		return err
	}
	pipe := c.RDB.Pipeline()
	cmds := map[string]*redis.DurationCmd{}
	for _, k := range keys {
		if want[k[strings.LastIndexByte(k, ':')+1:]] {
			cmds[k] = pipe.PTTL(ctx, k)
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("ttl: %w", err)
	}
	for k, cmd := range cmds {
		// -2 (gone since the scan) is fine; -1 means it never expires.
		if cmd.Val() == -1 {
			r.fail("%s of a finished saga has no TTL", k)
		}
	}
	return nil
}

// checkDeadlines: at rest no saga waits on a deadline.
func (c *Checker) checkDeadlines(ctx context.Context, r *Report) error {
	keys, err := c.scan(ctx, "zset")
	if err != nil {
		return err
	}
	for _, k := range keys {
		if !strings.HasSuffix(k, "}:deadlines") {
			continue
		}
		if n := c.RDB.ZCard(ctx, k).Val(); n > 0 {
			r.fail("%s: %d deadlines left at rest", k, n)
		}
	}
	return nil
}

// alertedSagas returns the saga ids named by any alert under the prefix.
func (c *Checker) alertedSagas(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	entries, err := c.Entries(ctx, "alerts")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if id, _ := e.Values["saga_id"].(string); id != "" {
			out[id] = true
		}
	}
	return out, nil
}

// Entries reads every entry of the streams named "<prefix>:{N}:<name>" in
// every partition, e.g. Entries(ctx, "deadletter").
func (c *Checker) Entries(ctx context.Context, name string) ([]redis.XMessage, error) {
	keys, err := c.scan(ctx, "stream")
	if err != nil {
		return nil, err
	}
	var out []redis.XMessage
	for _, k := range keys {
		p := c.partitionOf(k)
		if p == "" || k != c.Prefix+":{"+p+"}:"+name {
			continue
		}
		msgs, err := c.RDB.XRange(ctx, k, "-", "+").Result()
		if err != nil {
			return nil, fmt.Errorf("xrange %s: %w", k, err)
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// GroupState is one consumer group of one stream, as XINFO GROUPS shows it,
// with the stream's last entry.
type GroupState struct {
	Stream, Group   string
	Pending, Lag    int64
	LastDeliveredID string
	LastEntryID     string // "" when the stream is empty
}

// Unread reports whether the group has not read the stream's last entry.
func (g GroupState) Unread() bool {
	return g.LastEntryID != "" && idLess(g.LastDeliveredID, g.LastEntryID)
}

// Groups lists every consumer group of every stream under the prefix.
func (c *Checker) Groups(ctx context.Context) ([]GroupState, error) {
	keys, err := c.scan(ctx, "stream")
	if err != nil {
		return nil, err
	}
	slices.Sort(keys)
	var out []GroupState
	for _, k := range keys {
		groups, err := c.RDB.XInfoGroups(ctx, k).Result()
		if err != nil {
			if strings.Contains(err.Error(), "no such key") {
				continue
			}
			return nil, fmt.Errorf("xinfo groups %s: %w", k, err)
		}
		if len(groups) == 0 {
			continue
		}
		last, err := c.RDB.XRevRangeN(ctx, k, "+", "-", 1).Result()
		if err != nil {
			return nil, fmt.Errorf("last entry of %s: %w", k, err)
		}
		for _, g := range groups {
			gs := GroupState{Stream: k, Group: g.Name, Pending: g.Pending, Lag: g.Lag, LastDeliveredID: g.LastDeliveredID}
			if len(last) > 0 {
				gs.LastEntryID = last[0].ID
			}
			out = append(out, gs)
		}
	}
	return out, nil
}

// AtRest lists, for every consumer group of every stream under the prefix,
// the entries still pending and the entries not read yet. At rest both are
// zero everywhere: an entry never read is as much a loss as one never
// acknowledged, and a check that only counts pending entries passes while
// the groups have not even read what a test injected. It returns the
// problems and how many groups it looked at.
func (c *Checker) AtRest(ctx context.Context) ([]string, int, error) {
	groups, err := c.Groups(ctx)
	if err != nil {
		return nil, 0, err
	}
	var problems []string
	for _, g := range groups {
		if g.Pending > 0 || g.Unread() || g.Lag > 0 {
			problems = append(problems, fmt.Sprintf("%s/%s: %d pending, last delivered %s of %s (lag %d): not at rest",
				g.Stream, g.Group, g.Pending, g.LastDeliveredID, g.LastEntryID, g.Lag))
		}
	}
	return problems, len(groups), nil
}

// idLess compares two stream entry ids "<ms>-<seq>".
func idLess(a, b string) bool {
	am, as := splitID(a)
	bm, bs := splitID(b)
	return am < bm || (am == bm && as < bs)
}

func splitID(id string) (uint64, uint64) {
	ms, seq, _ := strings.Cut(id, "-")
	m, _ := strconv.ParseUint(ms, 10, 64)
	s, _ := strconv.ParseUint(seq, 10, 64)
	return m, s
}

// The order saga's steps, in order (SPEC section 4); every one of them has
// a compensation.
var orderSteps = []string{"createOrder", "chargePayment", "reserveStock", "createShipment"}

// checkSteps checks what a finished saga's hash says about its steps, as
// docs/saga-states.md documents it: the step it failed at (current_step),
// each step's forward result kept beside its compensation's, the
// compensation that failed for good in a FAILED saga, and a saga that
// completed with none of the compensation path's fields.
func checkSteps(r *Report, v *view) {
	h, id := v.saga, v.o.SagaID
	if len(h) == 0 {
		return
	}
	field := func(i int, name string) string { return h["step."+strconv.Itoa(i)+"."+name] }
	status := func(i int) string {
		if s := field(i, "status"); s != "" {
			return s
		}
		return "PENDING"
	}
	cur, err := strconv.Atoi(h["current_step"])
	if err != nil || cur < 0 || cur >= len(orderSteps) {
		r.fail("saga %s: current_step %q names no step", id, h["current_step"])
		return
	}
	if f, ok := h["first_reason"]; ok && (f == "" || f == h["reason"]) {
		r.fail("saga %s: first_reason %q beside reason %q: kept only when a later reason differs", id, f, h["reason"])
	}
	// The charge's result names the payment the gateway made, whatever
	// became of the step later (a refund must not overwrite it).
	if v.ledger["charge"] == "charged" && (status(1) == "COMPLETED" || status(1) == "COMPENSATED") &&
		!strings.Contains(field(1, "result"), `"payment_id":"`+v.ledger["payment_id"]+`"`) {
		r.fail("saga %s: chargePayment is %s but its result %q does not name payment %s", id, status(1), field(1, "result"), v.ledger["payment_id"])
	}
	if res := field(1, "compensation_result"); res != "" && !strings.Contains(res, `"refund":"`+v.ledger["refund"]+`"`) {
		r.fail("saga %s: the refund's result %q, the gateway's ledger says %q", id, res, v.ledger["refund"])
	}
	switch v.sagaState {
	case "COMPLETED":
		for k := range h {
			if strings.HasSuffix(k, ".compensation") || strings.HasSuffix(k, ".attempts") || strings.HasSuffix(k, ".error") ||
				k == "compensating_step" || k == "first_reason" || k == "reason" {
				r.fail("saga %s COMPLETED with %s (a field of the way back) in its hash", id, k)
			}
		}
		for i := range orderSteps {
			if status(i) != "COMPLETED" {
				r.fail("saga %s COMPLETED with step %s %s", id, orderSteps[i], status(i))
			}
		}
	case "COMPENSATED", "FAILED":
		if h["reason"] == "" {
			r.fail("saga %s %s without a reason", id, v.sagaState)
		}
		// The step the saga failed or stopped at; only a last step whose
		// outcome was known (it completed, the saga's end stalled) is
		// compensated instead.
		if s := status(cur); s != "FAILED" && !(cur == len(orderSteps)-1 && s == "COMPENSATED") {
			r.fail("saga %s %s: its current step %s is %s, not the step it failed at", id, v.sagaState, orderSteps[cur], s)
		}
		for i := cur + 1; i < len(orderSteps); i++ {
			if status(i) != "PENDING" {
				r.fail("saga %s %s: step %s after the one it failed at (%s) is %s", id, v.sagaState, orderSteps[i], orderSteps[cur], status(i))
			}
		}
		failed := 0
		for i := range orderSteps {
			comp := field(i, "compensation")
			switch {
			case comp == "FAILED":
				failed++
				if n, _ := strconv.Atoi(field(i, "attempts")); n < 1 || field(i, "error") == "" {
					r.fail("saga %s: compensation of %s FAILED after %q attempts, error %q", id, orderSteps[i], field(i, "attempts"), field(i, "error"))
				}
			case status(i) == "COMPENSATED" && comp != "COMPLETED":
				r.fail("saga %s: step %s COMPENSATED, its compensation %q", id, orderSteps[i], comp)
			case v.sagaState == "COMPENSATED" && i < cur && status(i) != "COMPENSATED":
				r.fail("saga %s COMPENSATED: step %s before the one it failed at is %s", id, orderSteps[i], status(i))
			}
		}
		if want := map[string]int{"COMPENSATED": 0, "FAILED": 1}[v.sagaState]; failed != want {
			r.fail("saga %s %s with %d compensations FAILED, want %d", id, v.sagaState, failed, want)
		}
	}
}
