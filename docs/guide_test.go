package docs_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestGuideBlocksCompile checks that every Go block in guide.md and in the
// README is cut from an Example function in this directory (which go test
// compiles and runs), line for line, ignoring indentation.
func TestGuideBlocksCompile(t *testing.T) {
	examples := normalise(readFile(t, "examples_test.go"))
	for _, doc := range []string{"guide.md", "../README.md"} {
		blocks := goBlocks(readFile(t, doc))
		if len(blocks) == 0 {
			t.Errorf("%s has no Go blocks", doc)
		}
		for i, b := range blocks {
			if !strings.Contains(examples, normalise(b)) {
				t.Errorf("%s: Go block %d is not in examples_test.go:\n%s", doc, i+1, b)
			}
		}
	}
}

var goBlock = regexp.MustCompile("(?s)```go\n(.*?)```")

func goBlocks(md string) []string {
	var out []string
	for _, m := range goBlock.FindAllStringSubmatch(md, -1) {
		out = append(out, m[1])
	}
	return out
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
