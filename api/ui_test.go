package api_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/internal/sagatest"
)

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// The dashboard shows counts, sagas, streams and dead letters, and draws a
// saga's timeline; headless Chromium renders it (the test skips that part
// only when Chromium is not installed; CI installs it).
func TestDashboard(t *testing.T) {
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	s.StartWorker(nil)
	s.SetStock("sku-ui", 10)
	ok, _ := s.PlaceOrder("c-ui", sagatest.I("sku-ui", 1, 100))
	bad, _ := s.PlaceOrder("c-ui", sagatest.I("sku-ui", 1001, 1)) // stock short
	s.WaitFinished([]sagatest.Placed{ok, bad}, 10*time.Second)
	// A forged copy of the completed saga's first event, with another id:
	// rejected, dead-lettered and alerted.
	ctx := context.Background()
	first, _ := s.RDB.XRange(ctx, s.KS.Stream(0, "order.created"), "-", "+").Result()
	forged := map[string]any{}
	for k, v := range first[0].Values {
		forged[k] = v
	}
	forged["event_id"] = "0192a000-0000-7000-8000-00000000f00d"
	s.Inject(s.KS.Stream(0, "order.created"), forged)
	s.WaitAtRest(5 * time.Second)

	index := get(t, s.APIURL+"/ui/")
	mustContain(t, "/ui/", index, ok.SagaID, bad.SagaID, "COMPLETED", "COMPENSATED", ":{0}:order.created", "payment", "Dead letters",
		"Alerts", "entry.rejected", "rejected: not the message the saga published at version 1")
	filtered, _, _ := strings.Cut(get(t, s.APIURL+"/ui/?status=COMPENSATED"), "<h2>Alerts</h2>")
	if strings.Contains(filtered, ok.SagaID) || !strings.Contains(filtered, bad.SagaID) {
		t.Error("the status filter does not filter")
	}
	page := get(t, s.APIURL+"/ui/sagas/"+bad.SagaID)
	mustContain(t, "saga page", page, `<svg id="timeline"`, bad.SagaID, "createOrder", "chargePayment", "reserveStock",
		"createShipment", "stock.insufficient", "payment.refunded", "#cf222e")

	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed: the rendering check is skipped (CI installs it)")
	}
	dir := t.TempDir()
	shot := filepath.Join(dir, "saga.png")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + dir}
	out, err := exec.CommandContext(ctx, chromium, append(flags, "--screenshot="+shot, "--window-size=1000,900",
		s.APIURL+"/ui/sagas/"+bad.SagaID)...).CombinedOutput()
	if err != nil {
		t.Fatalf("chromium screenshot: %v\n%s", err, out)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 5000 {
		t.Fatalf("screenshot missing or empty: %v %v", fi, err)
	}
	dom, err := exec.CommandContext(ctx, chromium, append(flags, "--dump-dom", s.APIURL+"/ui/sagas/"+bad.SagaID)...).Output()
	if err != nil {
		t.Fatalf("chromium dump-dom: %v", err)
	}
	mustContain(t, "rendered page", string(dom), bad.SagaID, "createShipment", "<circle")
	if os.Getenv("SAGATEST_KEEP_SCREENSHOT") != "" {
		_ = os.WriteFile(os.Getenv("SAGATEST_KEEP_SCREENSHOT"), mustRead(t, shot), 0o644)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
