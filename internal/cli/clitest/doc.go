// Package clitest checks what every streamsaga binary promises on its
// command line: -h/--help/-help print what it does and every configuration
// variable with its default (exit 0, stdout only), --version prints the
// build's version (exit 0), and anything else is a usage error (exit 2,
// nothing on stdout).
package clitest
