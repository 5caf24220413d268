package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// stamp, when set at link time (-ldflags "-X …/internal/cli.stamp=v1.2.3"),
// replaces the version and revision the build info lacks: a container build
// has no .git in its context, so Go records no VCS information there.
var stamp string

// Version is "<name> <module version> (<revision>, <commit time>[,
// modified]) <go version> <os/arch>" from the build info; the parts the
// build did not record are left out ("(devel)" is the version of a build
// outside a tagged module).
func Version(name string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Sprintf("%s (devel) %s %s/%s", name, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	return versionOf(name, bi)
}

func versionOf(name string, bi *debug.BuildInfo) string {
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	if stamp != "" {
		version = stamp
	}
	var vcs []string
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		vcs = append(vcs, "commit "+rev)
	}
	if t := settings["vcs.time"]; t != "" {
		vcs = append(vcs, t)
	}
	if settings["vcs.modified"] == "true" {
		vcs = append(vcs, "modified")
	}
	s := name + " " + version
	if len(vcs) > 0 {
		s += " (" + strings.Join(vcs, ", ") + ")"
	}
	return fmt.Sprintf("%s %s %s/%s", s, bi.GoVersion, runtime.GOOS, runtime.GOARCH)
}
