// Package e2e tests the real binaries (cmd/api, cmd/worker) as processes
// against a real redis-server: SIGKILL and SIGTERM of workers under load,
// start-up configuration errors.
package e2e
