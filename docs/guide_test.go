package docs_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// docs are the Markdown files whose Go blocks the tests check.
var docs = []string{"guide.md", "../README.md"}

// TestGuideBlocksCompile checks that every Go block in guide.md and in the
// README is cut from an Example function, in this directory or in one of
// the package example files exampleFiles lists (go test compiles and runs
// them), line for line, ignoring indentation.
func TestGuideBlocksCompile(t *testing.T) {
	examples := normalise(exampleSources(t))
	for _, doc := range docs {
		blocks := goBlocks(readFile(t, doc))
		if len(blocks) == 0 {
			t.Errorf("%s has no Go blocks", doc)
		}
		for i, b := range blocks {
			if !strings.Contains(examples, normalise(b.code)) {
				t.Errorf("%s: Go block %d is not in the examples:\n%s", doc, i+1, b.code)
			}
		}
	}
}

// TestDocBlocksCompileVerbatim checks that the Go blocks of each document
// compile as they stand, as a reader would paste them: the blocks under one
// heading are one function body, in order (a block that declares functions
// or types stands at the top level), with nothing else defined around them
// but the imports they use. A block that uses a name no block defines (a
// ctx, a stack) fails here even though its Example defines it.
func TestDocBlocksCompileVerbatim(t *testing.T) {
	goTool, err := goCommand()
	if err != nil {
		t.Skipf("no go command to compile with: %v", err)
	}
	imports := exampleImports(t)
	for _, doc := range docs {
		t.Run(filepath.Base(doc), func(t *testing.T) {
			src := program(goBlocks(readFile(t, doc)), imports)
			if _, err := parser.ParseFile(token.NewFileSet(), "", src, 0); err != nil {
				t.Fatalf("%s: the blocks do not parse: %v\n%s", doc, err, numbered(src))
			}
			if out, err := compile(t, goTool, src); err != nil {
				t.Fatalf("%s: the blocks do not compile as they stand: %v\n%s\n%s", doc, err, out, numbered(src))
			}
		})
	}
}

// block is one Go block of a document and the heading it is under.
type block struct {
	section string
	code    string
}

var (
	goBlock = regexp.MustCompile("(?s)```go\n(.*?)```")
	heading = regexp.MustCompile(`(?m)^#{1,3} .*$`)
)

// goBlocks returns the Go blocks of md, each with its heading.
func goBlocks(md string) []block {
	var out []block
	heads := heading.FindAllStringIndex(md, -1)
	for _, m := range goBlock.FindAllStringSubmatchIndex(md, -1) {
		section := ""
		for _, h := range heads {
			if h[0] < m[0] {
				section = md[h[0]:h[1]]
			}
		}
		out = append(out, block{section: section, code: md[m[2]:m[3]]})
	}
	return out
}

// program makes one main package of blocks: declaration blocks at the top
// level, the other blocks of each section in one function.
func program(blocks []block, imports map[string]string) string {
	var top, funcs strings.Builder
	var order []string
	bodies := map[string]*strings.Builder{}
	for _, b := range blocks {
		if isDecl(b.code) {
			top.WriteString(b.code + "\n")
			continue
		}
		if bodies[b.section] == nil {
			bodies[b.section] = &strings.Builder{}
			order = append(order, b.section)
		}
		bodies[b.section].WriteString(b.code + "\n")
	}
	for i, s := range order {
		fmt.Fprintf(&funcs, "// %s\nfunc section%d() {\n%s}\n\n", s, i, bodies[s])
	}
	code := top.String() + funcs.String()
	var src strings.Builder
	src.WriteString("package main\n\nimport (\n")
	for name, path := range imports {
		if regexp.MustCompile(`\b` + name + `\.`).MatchString(code) {
			fmt.Fprintf(&src, "\t%s %q\n", name, path)
		}
	}
	src.WriteString(")\n\nfunc main() {}\n\n" + code)
	return src.String()
}

// isDecl reports whether a block is top-level declarations: its first
// line that is not a comment starts one.
func isDecl(code string) bool {
	for _, l := range strings.Split(code, "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "//") {
			continue
		}
		for _, kw := range []string{"func ", "type ", "var ", "const "} {
			if strings.HasPrefix(l, kw) {
				return true
			}
		}
		return false
	}
	return false
}

// compile builds src as a package of this module (through an overlay, so
// nothing is written into the tree), for Linux: the TUN block is Linux's.
func compile(t *testing.T, goTool, src string) ([]byte, error) {
	dir := t.TempDir()
	file := filepath.Join(dir, "main.go")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(wd, "zz_docblocks")
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(pkg, "main.go"): file}})
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goTool, "build", "-overlay", ov, "-o", os.DevNull, pkg)
	cmd.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0", "GOFLAGS=")
	return cmd.CombinedOutput()
}

// goCommand finds the go command of the toolchain running the test.
func goCommand() (string, error) {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p, nil
	}
	return exec.LookPath("go")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// exampleImports returns the imports of the example files by name.
func exampleImports(t *testing.T) map[string]string {
	out := map[string]string{}
	for _, f := range exampleFiles(t) {
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			name := path[strings.LastIndex(path, "/")+1:]
			if imp.Name != nil {
				name = imp.Name.Name
			}
			out[name] = path
		}
	}
	return out
}

// exampleSources returns the example files, concatenated.
func exampleSources(t *testing.T) string {
	var b strings.Builder
	for _, f := range exampleFiles(t) {
		b.WriteString(readFile(t, f))
	}
	return b.String()
}

// exampleFiles are this directory's example files and those of the
// packages whose Examples the guide cuts blocks from (pkg.go.dev shows
// those under the API they use, such as ExampleDialer_DialContext).
func exampleFiles(t *testing.T) []string {
	var files []string
	for _, pattern := range []string{
		"examples*_test.go",
		"../core/example_test.go",
		"../core/impair/example_test.go",
		"../dialer/example_test.go",
		"../netconn/example_test.go",
		"../listener/example_forward_test.go",
	} {
		matches, err := filepath.Glob(pattern)
		if err != nil || len(matches) == 0 {
			t.Fatalf("no example files %s: %v", pattern, err)
		}
		files = append(files, matches...)
	}
	return files
}

// numbered prefixes each line of src with its number.
func numbered(src string) string {
	var b bytes.Buffer
	for i, l := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, l)
	}
	return b.String()
}

// normalise trims each line and drops blank ones.
func normalise(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
