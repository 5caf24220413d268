package cli

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
)

func TestVersionOf(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	got := versionOf("worker", bi)
	if !strings.HasPrefix(got, "worker v1.2.3 (commit abc123, 2026-01-02T03:04:05Z, modified) go1.26.0 ") {
		t.Errorf("got %q", got)
	}
	got = versionOf("api", &debug.BuildInfo{GoVersion: "go1.26.0"})
	if !strings.HasPrefix(got, "api (devel) go1.26.0 ") {
		t.Errorf("without build info: %q", got)
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		args   []string
		exit   bool
		status int
		out    string // in stdout
		err    string // in stderr
	}{
		{nil, false, 0, "", ""},
		{[]string{"-x=1"}, false, 0, "", ""},
		{[]string{"-h"}, true, 0, "Usage: demo [flags]", ""},
		{[]string{"--version"}, true, 0, "demo ", ""},
		{[]string{"--verbose"}, true, 2, "", "flag provided but not defined: -verbose"},
		{[]string{"-x=notanumber"}, true, 2, "", "invalid value"},
		{[]string{"run"}, true, 2, "", `unexpected argument "run"`},
	}
	for _, c := range cases {
		fs := NewFlagSet("demo")
		fs.Int("x", 0, "a number")
		cmd := Command{Name: "demo", Summary: "demo does nothing.", Flags: fs,
			Env: []EnvVar{{Name: "DEMO_DIR", Default: "/tmp", Help: "where"}}}
		var out, errb bytes.Buffer
		exit, status := cmd.Parse(c.args, &out, &errb)
		if exit != c.exit || status != c.status || !strings.Contains(out.String(), c.out) || !strings.Contains(errb.String(), c.err) ||
			(c.out == "" && out.Len() > 0) || (c.err == "" && errb.Len() > 0) {
			t.Errorf("%q: exit %v status %d stdout %q stderr %q", c.args, exit, status, out.String(), errb.String())
		}
	}
}

func TestHelpListsOwnEnvAndFlags(t *testing.T) {
	fs := NewFlagSet("demo")
	fs.Bool("fresh", false, "start empty")
	cmd := Command{Name: "demo", Summary: "demo does nothing.", Flags: fs, Notes: "the end",
		Env: []EnvVar{{Name: "DEMO_DIR", Default: "/tmp", Help: "where"}}}
	var out bytes.Buffer
	if exit, status := cmd.Parse([]string{"--help"}, &out, &out); !exit || status != 0 {
		t.Fatalf("exit %v status %d", exit, status)
	}
	for _, want := range []string{"demo does nothing.", "-fresh", "start empty", "  DEMO_DIR=/tmp\n        where\n", "  REDIS_URL=redis://localhost:6379/0\n", "the end"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestHealthcheck(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	// ":port" is how HTTP_ADDR and WORKER_METRICS_ADDR are usually written.
	if err := Healthcheck(context.Background(), ":"+port); err != nil {
		t.Errorf("ready server: %v", err)
	}
	status.Store(http.StatusServiceUnavailable)
	if err := Healthcheck(context.Background(), "0.0.0.0:"+port); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("not ready server: %v", err)
	}
	if err := Healthcheck(context.Background(), "no-port"); err == nil {
		t.Error("bad address accepted")
	}
}
