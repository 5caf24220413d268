package deploy

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// compose.yaml runs Redis with AOF fsynced on every write and a
// healthcheck, the API, and a worker that scales (no container name, no host
// port), both waiting for Redis to be healthy.
func TestComposeFile(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"../compose.yaml"}, cli.WithName("streamsaga"), cli.WithWorkingDirectory(".."))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
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
	if got := strings.Join(svc("api").Command, " "); got != "api" {
		t.Errorf("api command %q", got)
	}
	w := svc("worker")
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
