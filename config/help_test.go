package config

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// The help lists every field of Config, derived here by reflection, with
// its default: a field added without tags fails this test.
func TestEnvHelpListsEveryField(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteEnvHelp(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	t.Logf("help:\n%s", buf.String())
	defaults, err := LoadFrom(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for f := range reflect.TypeFor[Config]().Fields() {
		name := f.Tag.Get("env")
		if name == "" || f.Tag.Get("help") == "" {
			t.Errorf("field %s needs an env and a help tag", f.Name)
			continue
		}
		if seen[name] {
			t.Errorf("%s is the env tag of two fields", name)
		}
		seen[name] = true
		// The printed default must be what Load applies when the variable
		// is unset: parse it back through Load.
		def, _ := f.Tag.Lookup("envDefault")
		i := indexOf(lines, "  "+name+"="+def)
		if i < 0 || i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != f.Tag.Get("help") {
			t.Errorf("help has no line %q followed by its description", name+"="+def)
			continue
		}
		if def == "" {
			continue
		}
		c, err := LoadFrom(map[string]string{name: def})
		if err != nil {
			t.Errorf("%s=%s does not load: %v", name, def, err)
			continue
		}
		if !reflect.DeepEqual(reflect.ValueOf(*c).FieldByIndex(f.Index).Interface(), reflect.ValueOf(*defaults).FieldByIndex(f.Index).Interface()) {
			t.Errorf("%s: printed default %q is not the default Load applies", name, def)
		}
	}
	if len(Vars()) != len(seen) {
		t.Errorf("Vars lists %d variables, the struct has %d", len(Vars()), len(seen))
	}
}

func indexOf(lines []string, line string) int {
	for i, l := range lines {
		if l == line {
			return i
		}
	}
	return -1
}
