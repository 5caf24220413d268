// Package ctl is sagactl, a command line built on cobra: read-mostly
// commands over the product's Redis data (sagas, streams, pending entries,
// dead letters) and two actions (re-drive a FAILED saga, replay a dead
// letter), each with a table for people and --json for scripts.
//
// sagactl talks to Redis directly, not through the API: ADMIN_TOKEN does
// not apply to it, and anyone who can reach Redis can do what it does.
//
// Every flag and argument is checked before Redis is dialled; Redis is then
// pinged once with a short deadline and no retries, so that an unreachable
// server is one line on stderr, not a wait.
//
// Exit codes: 0 done, 1 failed (Redis, a refused action), 2 bad usage or
// configuration, 3 not found. Run is the whole CLI, in-process, so tests
// drive it like a shell does.
package ctl
