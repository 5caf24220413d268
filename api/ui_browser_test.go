package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/sagatest"
	"github.com/streamsaga/streamsaga/saga"
)

// chromiumPath finds a Chromium to drive. Without one the browser test
// skips, unless STREAMSAGA_REQUIRE_CHROMIUM=1 (CI) makes that a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("STREAMSAGA_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("no chromium on PATH and STREAMSAGA_REQUIRE_CHROMIUM=1")
	}
	t.Skip("chromium is not installed: the console's browser test is skipped (CI installs it)")
	return ""
}

// browser is one headless Chromium tab on the console.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// watchCSP records, in every page the tab loads, what the
// Content-Security-Policy refused: the console must need no exception.
const watchCSP = `window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base}
	// The first run starts the browser: no timeout on it (it would end the
	// browser with it).
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watchCSP})
		return err
	}))
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	done := make(chan struct{})
	go b.failOnExceptions(chromedp.Console(ctx), done) // subscribed before any page loads
	t.Cleanup(func() { cancel(); <-done })             // before the test ends: no Errorf after it
	return b
}

// failOnExceptions fails the test on any uncaught exception in the page,
// or any refusal the browser reports as a security message.
func (b *browser) failOnExceptions(messages iter.Seq2[chromedp.ConsoleMessage, error], done chan<- struct{}) {
	defer close(done)
	for m, err := range messages {
		if err != nil {
			return
		}
		if m.IsException() || (m.Source == "security") {
			b.t.Errorf("browser console: %s", m)
		}
	}
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// text reads an element's text in one evaluation in the page: the live
// update replaces regions every two seconds, and a node found first and read
// after (chromedp.Text) may have been detached in between, reading "".
func (b *browser) text(sel string) string {
	b.t.Helper()
	q, err := json.Marshal(sel)
	if err != nil {
		b.t.Fatal(err)
	}
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e === null ? "\x00missing" : e.innerText; })()`, q)
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	if s == "\x00missing" {
		b.t.Fatalf("no element %s in the page", sel)
	}
	return strings.TrimSpace(s)
}

func (b *browser) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// waitFor polls a JavaScript condition in the page.
func (b *browser) waitFor(what, cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 40*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		b.t.Fatalf("waiting for %s: %v (flash: %q)", what, err, b.eval(`(document.getElementById('flash')||{}).textContent||''`))
	}
}

func (b *browser) search(q string) {
	b.t.Helper()
	b.do("search "+q, chromedp.SetValue(chromedp.CSS("#q"), q), chromedp.Submit(chromedp.CSS("#q")),
		chromedp.WaitVisible(chromedp.CSS("#saga-id")))
}

// screenshot saves a full-page PNG under dir and checks it is one.
func (b *browser) screenshot(dir, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 10_000 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		b.t.Fatalf("screenshot %s: %d bytes, not a PNG of a page", name, len(png))
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	// SAGATEST_KEEP_SCREENSHOTS names a directory to keep them in after
	// the test (the temporary one goes).
	if keep := os.Getenv("SAGATEST_KEEP_SCREENSHOTS"); keep != "" {
		if err := os.WriteFile(filepath.Join(keep, name), png, 0o644); err != nil {
			b.t.Errorf("keep screenshot: %v", err)
		}
	}
	return path
}

// The console in a real headless Chromium: it lists the sagas, finds one
// by its id and by its order's id, shows its page; Retry on a FAILED saga
// is refused without the admin token (the API's message shown) and
// accepted with it, and the page follows the saga to COMPENSATED without a
// reload; Replay sends a dead letter back, the one of its row's partition
// when another partition holds a dead letter with the same id. With
// JavaScript off the pages still show the data.
func TestConsoleInChromium(t *testing.T) {
	chromiumPath(t) // skip before starting anything
	const token = "console-test-token"
	s := sagatest.New(t, srv, map[string]string{"SAGA_MODE": event.ModeOrchestration,
		"COMPENSATION_BACKOFF": "10ms", "COMPENSATION_ATTEMPTS": "2", "SAGA_PARTITIONS": "2"})
	s.StartAPI(map[string]string{"ADMIN_TOKEN": token})
	stopFaulty := s.StartWorker(map[string]string{"PAYMENT_REFUND_FAILURES": "1000"})
	admin := map[string]string{"Authorization": "Bearer " + token}
	if code, err := s.Do(http.MethodPut, "/inventory/sku-c", map[string]int64{"available": 10}, admin, nil); err != nil || code != 200 {
		t.Fatalf("set stock: %d %v", code, err)
	}
	good, err := s.PlaceOrder("c-console", sagatest.I("sku-c", 1, 250))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := s.PlaceOrder("c-console", sagatest.I("sku-c", 11, 100)) // stock short; its refund keeps failing
	if err != nil {
		t.Fatal(err)
	}
	s.WaitFinished([]sagatest.Placed{good, bad}, 15*time.Second)
	ctx := context.Background()
	if st, err := s.Product.Engine.Get(ctx, bad.SagaID); err != nil || st.Status != saga.StatusFailed {
		t.Fatalf("the saga to retry is not FAILED: %v %v", st, err)
	}
	// A command no handler can read: dead-lettered.
	poison := s.Inject(s.KS.Stream(0, handlers.CmdPaymentCharge), map[string]any{"type": handlers.CmdPaymentCharge, "junk": "<b>x</b>"})
	s.WaitAtRest(10 * time.Second)
	deadID, deadP := "", 0
	for p := range s.KS.Partitions {
		msgs, _ := s.RDB.XRange(ctx, s.KS.DeadLetter(p), "-", "+").Result()
		for _, m := range msgs {
			if m.Values["source_id"] == poison {
				deadID, deadP = m.ID, p
			}
		}
	}
	if deadID == "" {
		t.Fatal("the poison command was not dead-lettered")
	}
	// Its twin on the other partition: the same id, as two dead letters
	// written in the same millisecond have. The API refuses a replay of
	// the id alone (409 ambiguous_id): the console must name the partition.
	twinP := 1 - deadP
	if err := s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: s.KS.DeadLetter(twinP), ID: deadID, Values: map[string]any{
		"group": "payment", "error": "twin", "deliveries": "5", "source_stream": s.KS.Stream(twinP, handlers.CmdPaymentCharge),
		"source_id": "1-1", "type": handlers.CmdPaymentCharge}}).Err(); err != nil {
		t.Fatalf("write the twin dead letter: %v", err)
	}
	// The operator fixes the gateway: a worker without the fault.
	_ = stopFaulty()
	s.StartWorker(nil)

	b := newBrowser(t, s.APIURL)
	shots := t.TempDir()

	// The list, live.
	b.do("load /ui/", chromedp.Navigate(s.APIURL+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#sagas a[href="/ui/sagas/%s"]`, bad.SagaID))),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#sagas a[href="/ui/sagas/%s"]`, good.SagaID))))
	b.waitFor("the script to run and the first live update", `document.documentElement.classList.contains('js') &&
		document.getElementById('live-state').textContent.startsWith('live ·')`)

	// Search by saga id, then by order id.
	b.search(good.SagaID)
	if got := b.text("#saga-id"); got != good.SagaID {
		t.Fatalf("search by saga id shows %q", got)
	}
	if got := b.text("#saga-status"); got != saga.StatusCompleted {
		t.Errorf("completed saga shows %q", got)
	}
	b.search(bad.OrderID)
	if got := b.text("#saga-id"); got != bad.SagaID {
		t.Fatalf("search by order id %s shows saga %q, want %s", bad.OrderID, got, bad.SagaID)
	}
	if got := b.text("#saga-status"); got != saga.StatusFailed {
		t.Fatalf("FAILED saga shows %q", got)
	}
	if got := b.text("#steps"); !strings.Contains(got, "chargePayment") || !strings.Contains(got, "payment_id") {
		t.Errorf("steps table lacks the charge's result: %q", got)
	}
	if got := b.text("#context"); !strings.Contains(got, "items[0].sku") || !strings.Contains(got, "sku-c") {
		t.Errorf("context is not a key–value table: %q", got)
	}

	// Retry without the token: the API's refusal is shown, nothing changes.
	b.eval(`window.__sameDocument = 'yes'; ''`)
	b.do("retry without a token", chromedp.Click(chromedp.CSS("#retry")))
	b.waitFor("the refusal", `document.getElementById('flash').textContent.includes('(401)')`)
	if msg := b.text("#flash"); !strings.Contains(msg, "Authorization: Bearer") {
		t.Errorf("the refusal does not carry the API's message: %q", msg)
	}
	if got := b.text("#saga-status"); got != saga.StatusFailed {
		t.Fatalf("a refused retry changed the saga: %s", got)
	}

	// With the token: accepted, and the page follows the saga to its end.
	b.do("enter the token", chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#token-save")))
	if got := b.eval(`sessionStorage.getItem('streamsaga.adminToken')`); got != token {
		t.Fatalf("token kept as %q", got)
	}
	b.do("retry with the token", chromedp.Click(chromedp.CSS("#retry")))
	b.waitFor("the retry to be accepted", `document.getElementById('flash').textContent.startsWith('Retry accepted')`)
	b.waitFor("the live update to COMPENSATED", `document.getElementById('saga-status').textContent === 'COMPENSATED'`)
	if b.eval(`window.__sameDocument || 'reloaded'`) != "yes" {
		t.Error("the page was reloaded: the status did not change by a live update")
	}
	if strings.Contains(b.eval(`location.href`), token) {
		t.Error("the token is in the URL")
	}
	b.screenshot(shots, "saga.png")

	// Replay the dead letter: accepted, and its row leaves the live list;
	// its twin's stays.
	row := fmt.Sprintf(`tr[data-entry="%s"][data-partition="%d"]`, deadID, deadP)
	twinRow := fmt.Sprintf(`tr[data-entry="%s"][data-partition="%d"]`, deadID, twinP)
	b.do("load the dead letters", chromedp.Navigate(s.APIURL+"/ui/deadletters"), chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.CSS(twinRow)))
	b.screenshot(shots, "deadletters.png")
	b.eval(`window.__sameDocument = 'yes'; ''`)
	b.do("replay", chromedp.Click(chromedp.CSS(row+` button[data-action="replay"]`)))
	b.waitFor("the replay to be accepted", `document.getElementById('flash').textContent.includes('replayed on ')`)
	b.waitFor("the replayed dead letter to leave the list", fmt.Sprintf(`!document.querySelector('%s')`, row))
	if b.eval(`window.__sameDocument || 'reloaded'`) != "yes" {
		t.Error("the dead letters page was reloaded")
	}
	if got := b.eval(fmt.Sprintf(`document.querySelector('%s') ? 'kept' : 'gone'`, twinRow)); got != "kept" {
		t.Error("the twin dead letter on the other partition left the list")
	}
	if n := s.RDB.XLen(ctx, s.KS.DeadLetter(twinP)).Val(); n != 1 {
		t.Errorf("partition %d holds %d dead letters, want its twin untouched", twinP, n)
	}

	for _, view := range []string{"alerts", "streams"} {
		b.do("load "+view, chromedp.Navigate(s.APIURL+"/ui/"+view), chromedp.WaitVisible(chromedp.CSS("#"+view)))
		b.screenshot(shots, view+".png")
	}

	// The overview, for the record.
	b.do("load /ui/ again", chromedp.Navigate(s.APIURL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#sagas")))
	b.waitFor("a live update", `document.getElementById('live-state').textContent.startsWith('live ·')`)
	b.screenshot(shots, "console.png")
	if v := b.eval(`JSON.stringify(window.__csp)`); v != "[]" {
		t.Errorf("the Content-Security-Policy refused: %s", v)
	}

	// JavaScript off: the server-rendered pages still show the data. Only
	// DOM queries from here: nothing that runs script in the page.
	b.withoutJS("the saga page", s.APIURL+"/ui/sagas/"+bad.SagaID,
		chromedp.WaitVisible(chromedp.CSS("#saga-status.COMPENSATED")), chromedp.WaitReady(chromedp.CSS("html:not(.js)")))
	b.withoutJS("the list", s.APIURL+"/ui/?status=COMPLETED",
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#sagas a[href="/ui/sagas/%s"]`, good.SagaID))))
}

// withoutJS loads a page in a new tab whose scripts are off, then checks it.
func (b *browser) withoutJS(what, url string, checks ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	tab, cancel := chromedp.NewContext(b.ctx)
	defer cancel()
	off := &browser{t: b.t, ctx: tab, base: b.base}
	off.do(what+" without JavaScript", append([]chromedp.Action[chromedp.Void]{
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}),
		chromedp.Navigate(url)}, checks...)...)
}
