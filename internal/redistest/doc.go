// Package redistest starts real redis-server processes on free loopback
// ports for tests: plain, with AOF, killed with SIGKILL and restarted on the
// same directory. Nothing here mocks Redis.
package redistest
