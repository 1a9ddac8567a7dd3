package sockio

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports holds the package to its place in the layering
// (docs/architecture.md § Socket I/O): socket I/O from the standard
// library and x/sys/unix, unsafe for syscall structures, and nothing of
// uxp's root package or protocol.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"errors": true, "log/slog": true, "net": true, "net/netip": true,
		"sync/atomic": true, "syscall": true, "unsafe": true,
		"golang.org/x/sys/unix": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[path] {
				t.Errorf("%s imports %q, which internal/sockio may not", name, path)
			}
		}
	}
}
