package config

import (
	"fmt"
	"io"
	"reflect"
)

// Var is one environment variable of Config: its name, default (as
// written in envDefault; empty when unset) and one-line description.
type Var struct {
	Name, Default, Help string
}

// Vars lists Config's environment variables in declaration order, read
// from its struct tags, so that help texts never drift from what Load reads.
func Vars() []Var {
	t := reflect.TypeFor[Config]()
	vars := make([]Var, 0, t.NumField())
	for f := range t.Fields() {
		name, ok := f.Tag.Lookup("env")
		if !ok {
			continue
		}
		vars = append(vars, Var{Name: name, Default: f.Tag.Get("envDefault"), Help: f.Tag.Get("help")})
	}
	return vars
}

// WriteEnvHelp writes every variable as NAME=default and its description
// below, indented by two spaces, for a binary's -h.
func WriteEnvHelp(w io.Writer) error {
	for _, v := range Vars() {
		if _, err := fmt.Fprintf(w, "  %s=%s\n        %s\n", v.Name, v.Default, v.Help); err != nil {
			return err
		}
	}
	return nil
}
