package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Healthcheck GETs http://<addr>/readyz, where addr is the address a
// process listens on (":8080" and "0.0.0.0:8080" are asked on loopback),
// and returns nil on 200. A container image without curl runs the binary
// itself with -healthcheck for its HEALTHCHECK.
func Healthcheck(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, body)
	}
	return nil
}

// HealthcheckStatus is what -healthcheck exits with: 0 when addr's /readyz
// answers 200, else 1 (Docker reads 1 as unhealthy and reserves the other
// statuses) with the reason on stderr. A configuration that did not load
// (err) is unhealthy too.
func HealthcheckStatus(ctx context.Context, name, addr string, err error, stderr io.Writer) int {
	if err == nil {
		err = Healthcheck(ctx, addr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: not ready: %v\n", name, err)
		return 1
	}
	return 0
}
