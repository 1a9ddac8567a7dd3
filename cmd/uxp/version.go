package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/uxp-go/uxp"
)

// versionCommand implements `uxp version`: one line with the module
// version (uxp.Version), the wire protocol version, the Go toolchain and
// the platform, and, when the binary was built from a VCS checkout, the
// revision.
func versionCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("uxp version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(fs.Output(), "Usage: uxp version\n") }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "uxp %s (wire protocol %d) %s %s/%s%s\n",
		uxp.Version, uxp.ProtocolVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH, vcsRevision())
	return nil
}

// vcsRevision is " rev <hash>[+dirty]" when the build recorded one.
func vcsRevision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return " rev " + rev + dirty
}
