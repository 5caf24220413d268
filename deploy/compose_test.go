package deploy

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/streamsaga/streamsaga/config"
)

func loadCompose(t *testing.T, environ ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../compose.yaml"}, cli.WithName("streamsaga"), cli.WithWorkingDirectory(".."),
		cli.WithEnv(environ))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// compose.yaml runs Redis with AOF fsynced on every write and a
// healthcheck, the API, and a worker that scales (no container name, no host
// port), both waiting for Redis to be healthy, both from one image built
// once, restarted when they die, with healthchecks and a stop grace period
// longer than a worker's handle timeout.
func TestComposeFile(t *testing.T) {
	p, err := loadCompose(t, "ADMIN_TOKEN=s3cret")
	if err != nil {
		t.Fatalf("load compose.yaml: %v", err)
	}
	svc := func(name string) types.ServiceConfig {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		return s
	}
	redis := svc("redis")
	cmd := strings.Join(redis.Command, " ")
	for _, want := range []string{"--appendonly yes", "--appendfsync always"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("redis command %q lacks %s", cmd, want)
		}
	}
	if redis.HealthCheck == nil || len(redis.HealthCheck.Test) == 0 {
		t.Error("redis has no healthcheck")
	}
	for _, name := range []string{"api", "worker"} {
		s := svc(name)
		if s.Build == nil {
			t.Errorf("%s is not built from the Dockerfile", name)
		}
		if dep, ok := s.DependsOn["redis"]; !ok || dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s does not wait for a healthy redis: %+v", name, s.DependsOn)
		}
		if s.Environment["REDIS_URL"] == nil {
			t.Errorf("%s has no REDIS_URL", name)
		}
	}
	api, w := svc("api"), svc("worker")
	if api.Image == "" || api.Image != w.Image {
		t.Errorf("api (%q) and worker (%q) do not share one image", api.Image, w.Image)
	}
	if api.Build == nil || w.Build == nil || api.Build.Context != w.Build.Context || api.Build.Dockerfile != w.Build.Dockerfile {
		t.Errorf("api and worker build differently: %+v %+v", api.Build, w.Build)
	}
	defaults, err := config.LoadFrom(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	handle := defaults.HandleTimeout
	if handle == 0 {
		handle = defaults.ClaimMinIdle * 9 / 10 // the runner's default
	}
	for _, name := range []string{"redis", "api", "worker"} {
		s := svc(name)
		if s.Restart != "unless-stopped" && s.Restart != "always" && !strings.HasPrefix(s.Restart, "on-failure") {
			t.Errorf("%s restart policy %q", name, s.Restart)
		}
	}
	for _, s := range []types.ServiceConfig{api, w} {
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= handle {
			t.Errorf("%s stop_grace_period %v is not longer than the handle timeout %v", s.Name, s.StopGracePeriod, handle)
		}
		hc := s.HealthCheck
		if hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" || filepath.Base(hc.Test[1]) != s.Name || !slices.Contains(hc.Test, "-healthcheck") {
			t.Errorf("%s healthcheck %+v: want the service's own binary with -healthcheck", s.Name, hc)
		}
	}
	if w.Environment["WORKER_METRICS_ADDR"] == nil {
		t.Error("the worker's healthcheck needs WORKER_METRICS_ADDR")
	}
	if tok := api.Environment["ADMIN_TOKEN"]; tok == nil || *tok != "s3cret" {
		t.Errorf("api ADMIN_TOKEN = %v, want it from the environment", tok)
	}
	if got := strings.Join(svc("api").Command, " "); got != "api" {
		t.Errorf("api command %q", got)
	}
	if got := strings.Join(w.Command, " "); got != "worker" {
		t.Errorf("worker command %q", got)
	}
	if w.ContainerName != "" || len(w.Ports) != 0 {
		t.Errorf("worker cannot scale: container_name %q, ports %v", w.ContainerName, w.Ports)
	}
}

// The Dockerfile builds static binaries in a multi-stage build, runs as a
// non-root user and uses CMD (not ENTRYPOINT) so compose picks the binary.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	d := string(b)
	if strings.Count("\n"+d, "\nFROM ") < 2 {
		t.Error("not a multi-stage build")
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER nonroot", "CMD [", "./cmd/api", "./cmd/worker"} {
		if !strings.Contains(d, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if strings.Contains("\n"+d, "\nENTRYPOINT") {
		t.Error("Dockerfile uses ENTRYPOINT; compose could not pick the binary with command")
	}
}

// Without ADMIN_TOKEN compose refuses to start, naming the variable: the
// admin actions are never left open by accident.
func TestComposeNeedsAdminToken(t *testing.T) {
	_, err := loadCompose(t)
	if err == nil || !strings.Contains(err.Error(), "ADMIN_TOKEN") {
		t.Fatalf("compose.yaml loaded without ADMIN_TOKEN: %v", err)
	}
}

// .dockerignore keeps .git and the rest out of the build context, but never
// a file the binaries' build needs (Go sources and embedded Lua, HTML,
// OpenAPI).
func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	excluded := func(path string) bool {
		parts := strings.Split(path, "/")
		for _, p := range patterns {
			rest := strings.TrimPrefix(p, "**/")
			for i := range parts {
				// A pattern names a file or a directory (and all below it);
				// "**/" lets it start at any depth.
				if i > 0 && rest == p {
					break
				}
				for j := i + 1; j <= len(parts); j++ {
					if ok, _ := filepath.Match(rest, strings.Join(parts[i:j], "/")); ok {
						return true
					}
				}
			}
		}
		return false
	}
	if !excluded(".git/HEAD") {
		t.Error(".dockerignore does not exclude .git")
	}
	out, err := exec.Command("go", "list", "-deps", "-json=Dir,GoFiles,EmbedFiles,Module", "../cmd/api", "../cmd/worker", "../cmd/sagactl").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	need := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var pkg struct {
			Dir                 string
			GoFiles, EmbedFiles []string
			Module              *struct{ Main bool }
		}
		if err := dec.Decode(&pkg); err != nil {
			t.Fatal(err)
		}
		if pkg.Module == nil || !pkg.Module.Main {
			continue
		}
		rel, err := filepath.Rel(root, pkg.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(pkg.GoFiles, pkg.EmbedFiles...) {
			need = append(need, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	if len(need) < 20 {
		t.Fatalf("go list found only %v", need)
	}
	for _, f := range need {
		if excluded(f) {
			t.Errorf(".dockerignore excludes %s, which the build needs", f)
		}
	}
}

// The Dockerfile's -X stamp names a variable that exists: the linker ignores
// a wrong one silently, and the image's binaries would say "(devel)".
func TestDockerfileVersionStamp(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`-X (\S+)=\$\{VERSION\}`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("the Dockerfile stamps no version (-X …=${VERSION})")
	}
	bin := filepath.Join(t.TempDir(), "worker")
	if out, err := exec.Command("go", "build", "-ldflags", "-X "+m[1]+"=v-stamped", "-o", bin, "../cmd/worker").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("worker --version: %v", err)
	}
	if !strings.Contains(string(out), "v-stamped") {
		t.Fatalf("worker --version = %q: the stamp %s did not reach it", out, m[1])
	}
}
