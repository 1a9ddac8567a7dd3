package uxp

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Layering rules of docs/architecture.md, checked on the source (issue 17).

// pureLayers may not do I/O or read the clock: they import none of
// pureForbidden and never call time.Now; the caller passes now in.
var pureLayers = []string{"internal/wire", "internal/handshake", "internal/arq"}

var pureForbidden = []string{"net", "os", "syscall", "unsafe", "reflect"}

// clockReaders are the functions of package time that read the clock.
var clockReaders = []string{"Now", "Since", "Until"}

// kcpQuarantine is where go:linkname, and unsafe or reflect next to kcp-go,
// may appear: the kcpx package only. (internal/sockio imports unsafe for
// its syscall structures; its own TestImports holds it to that.)
var kcpQuarantine = []string{"internal/kcpx/"}

type goFile struct {
	path    string // slash-separated, relative to the module root
	f       *ast.File
	imports map[string]string // import path → local name
	src     []byte
}

// moduleFiles parses every non-test Go file of this module (not of the
// nested bench module).
func moduleFiles(t *testing.T) []goFile {
	t.Helper()
	var out []goFile
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); path != "." && err == nil {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			return err
		}
		g := goFile{path: filepath.ToSlash(path), f: f, imports: map[string]string{}, src: src}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			name := p[strings.LastIndex(p, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			g.imports[p] = name
		}
		out = append(out, g)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 50 {
		t.Fatalf("found only %d files: not run from the module root?", len(out))
	}
	return out
}

func under(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasSuffix(p, "/") && strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// TestLayerPurity: the pure layers import no I/O package and never read the
// clock (time.Now, time.Since, time.Until).
func TestLayerPurity(t *testing.T) {
	for _, g := range moduleFiles(t) {
		dir := filepath.ToSlash(filepath.Dir(g.path))
		pure := false
		for _, l := range pureLayers {
			pure = pure || dir == l || strings.HasPrefix(dir, l+"/")
		}
		if !pure {
			continue
		}
		for _, p := range pureForbidden {
			if _, ok := g.imports[p]; ok {
				t.Errorf("%s imports %s: %s is a pure layer", g.path, p, dir)
			}
		}
		name, ok := g.imports["time"]
		if !ok {
			continue
		}
		ast.Inspect(g.f, func(n ast.Node) bool {
			if s, ok := n.(*ast.SelectorExpr); ok && slices.Contains(clockReaders, s.Sel.Name) {
				if x, ok := s.X.(*ast.Ident); ok && x.Name == name {
					t.Errorf("%s calls time.%s: %s takes now as a parameter", g.path, s.Sel.Name, dir)
				}
			}
			return true
		})
	}
}

// TestKCPQuarantine: go:linkname, and unsafe or reflect in a file that
// imports kcp-go, appear only in kcpQuarantine; the root package imports
// unsafe nowhere.
func TestKCPQuarantine(t *testing.T) {
	for _, g := range moduleFiles(t) {
		for _, cg := range g.f.Comments {
			for _, c := range cg.List {
				if strings.HasPrefix(c.Text, "//go:linkname") && !under(g.path, kcpQuarantine) {
					t.Errorf("%s uses go:linkname outside %v", g.path, kcpQuarantine)
				}
			}
		}
		_, kcpgo := g.imports["github.com/xtaci/kcp-go/v5"]
		for _, p := range []string{"unsafe", "reflect"} {
			if _, ok := g.imports[p]; ok && kcpgo && !under(g.path, kcpQuarantine) {
				t.Errorf("%s imports %s and kcp-go outside %v", g.path, p, kcpQuarantine)
			}
		}
		if _, ok := g.imports["unsafe"]; ok && !strings.Contains(g.path, "/") {
			t.Errorf("%s: the root package imports unsafe", g.path)
		}
	}
}
