// Package cli is what the long-running binaries (api, worker, dev) share on
// their command line: -h/--help generated from the configuration struct,
// --version from the build info, usage errors with exit status 2, and the
// -healthcheck client that a container without curl runs against the
// process's own /readyz.
package cli
