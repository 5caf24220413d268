// Package config reads streamsaga's configuration from the environment
// (SPEC section 8) with github.com/caarlos0/env, applies the documented
// defaults and validates everything at once.
//
// A bad value is reported as an error that names the variable; the binaries
// turn it into exit status 2 before they touch Redis.
//
// The struct tags are the one list of variables: env names one, envDefault
// gives its default and help describes it in a line. Vars and WriteEnvHelp
// read them for the binaries' -h, so a new field needs all three.
package config
