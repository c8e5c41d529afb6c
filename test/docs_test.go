package test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestReadmeOpensWithSetupCommands: the README opens with the two
// commands that do all set-up on a fresh machine, and the Makefile has
// both targets.
func TestReadmeOpensWithSetupCommands(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	in := false
	for _, l := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(l, "```") {
			if in {
				break
			}
			in = true
			continue
		}
		if in {
			if cmd, _, _ := strings.Cut(l, "#"); strings.TrimSpace(cmd) != "" {
				block = append(block, strings.TrimSpace(cmd))
			}
		}
	}
	if want := []string{"make run", "make test"}; !slices.Equal(block, want) {
		t.Errorf("the README's first code block: got commands %q, want %q", block, want)
	}
	mk, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"run", "test"} {
		if !regexp.MustCompile(`(?m)^` + target + `:`).Match(mk) {
			t.Errorf("the Makefile has no %q target", target)
		}
	}
}

// TestDocLinks: every relative link in the README, ARCHITECTURE.md and
// docs/ names a file that exists and, with a #fragment, a heading of that
// file; a link to a Go file whose text names a declaration (`Func`,
// `Type.Method`) names one that file declares. So a doc cannot point at a
// section, file or function that has gone.
func TestDocLinks(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	docs := []string{"README.md", "ARCHITECTURE.md"}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range more {
		rel, _ := filepath.Rel(root, m)
		docs = append(docs, rel)
	}
	if len(more) == 0 {
		t.Fatal("no docs/*.md")
	}
	anchors := map[string]map[string]bool{} // doc path -> its heading anchors
	anchorsOf := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		anchors[path] = headingAnchors(string(data))
		return anchors[path]
	}
	checked := 0
	for _, doc := range docs {
		data, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(stripCode(string(data)), -1) {
			text, target := m[1], m[2]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			file, frag, _ := strings.Cut(target, "#")
			path := filepath.Join(root, doc)
			if file != "" {
				path = filepath.Join(filepath.Dir(path), file)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s: link [%s](%s): %v", doc, text, target, err)
				continue
			}
			if frag != "" {
				if !strings.HasSuffix(path, ".md") || !anchorsOf(path)[frag] {
					t.Errorf("%s: link [%s](%s): no heading #%s in %s", doc, text, target, frag, file)
				}
			}
			if name := strings.Trim(text, "`"); strings.HasSuffix(path, ".go") && goName.MatchString(name) {
				src, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !declares(string(src), name) {
					t.Errorf("%s: link [%s](%s): %s declares no %s", doc, text, target, file, name)
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no relative links checked")
	}
}

var (
	mdLink = regexp.MustCompile(`\[([^\]]+)\]\(([^)\s]+)\)`)
	goName = regexp.MustCompile(`^[A-Za-z_]\w*(\.[A-Za-z_]\w*)?$`)
	fence  = regexp.MustCompile("(?ms)^```.*?^```")
)

// stripCode blanks fenced code blocks, whose brackets are not links.
func stripCode(md string) string { return fence.ReplaceAllString(md, "") }

// headingAnchors returns the anchors GitHub gives the headings of md:
// lower case, spaces to hyphens, punctuation other than - and _ dropped,
// a repeated anchor numbered -1, -2, ...
func headingAnchors(md string) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(stripCode(md), "\n") {
		if !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(l, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		for i := 1; out[a]; i++ {
			a = b.String() + "-" + strconv.Itoa(i)
		}
		out[a] = true
	}
	return out
}

// declares reports whether Go source src declares name: a function, type,
// variable or constant, or for "T.M" a method M of T.
func declares(src, name string) bool {
	if typ, method, ok := strings.Cut(name, "."); ok {
		return regexp.MustCompile(`(?m)^func \(\w+ \*?` + typ + `(\[[^\]]*\])?\) ` + method + `[\[(]`).MatchString(src)
	}
	return regexp.MustCompile(`(?m)^(func ` + name + `[\[(]|type ` + name + `\b|(var|const) ` + name + `\b|\t` + name + `\b[^\n]*=)`).MatchString(src)
}
