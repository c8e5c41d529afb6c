package sandbox

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenRoot replaces the test's temporary directory in generated
// profiles, so the golden files do not depend on where the test runs.
const goldenRoot = "/Users/dev/ringlet-golden"

// sbplPolicy is a fixed policy under root: workspace root/project with a
// .git, the profile HOME root/home.
func sbplPolicy(t *testing.T, root, network string) *Policy {
	t.Helper()
	ws := filepath.Join(root, "project")
	if err := os.MkdirAll(filepath.Join(ws, ".git", "hooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := &Policy{
		Workspace: ws,
		Home:      filepath.Join(root, "home"),
		HomePath:  "/Users/dev",
		Command:   []string{"/usr/local/bin/claude", "-p", "hello"},
		Env:       []string{"PATH=/usr/bin:/bin", "ANTHROPIC_API_KEY=rlt_sbpl-canary"},
		Network:   network,
		Runtime:   []string{"/usr/local/lib/node_modules/@anthropic-ai/claude-code"},
		ReadOnly:  []string{filepath.Join(root, "docs")},
	}
	if network == NetProvider {
		p.Socket = filepath.Join(root, "s.sock")
		p.Ringlet = "/usr/local/bin/ringlet"
	}
	return p
}

func TestSBPLGolden(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	const port = 49152
	cases := []struct {
		name   string
		policy func() *Policy
	}{
		{"provider", func() *Policy { return sbplPolicy(t, root, NetProvider) }},
		{"none", func() *Policy { return sbplPolicy(t, root, NetNone) }},
		{"host", func() *Policy { return sbplPolicy(t, root, NetHost) }},
		{"gitconfig", func() *Policy {
			p := sbplPolicy(t, root, NetProvider)
			p.AllowGitConfig = true
			return p
		}},
		{"pinned", func() *Policy {
			p := sbplPolicy(t, root, NetNone)
			p.Pinned = []string{filepath.Join(p.Workspace, "linked-elsewhere.txt")}
			return p
		}},
		{"protected", func() *Policy {
			p := sbplPolicy(t, root, NetProvider)
			p.Protected = append(append([]string{}, DefaultProtected...), ".github/workflows/")
			return p
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.policy()
			prof, err := p.SBPL(port)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.ReplaceAll(prof, root, goldenRoot)
			golden := filepath.Join("testdata", "sbpl", c.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./sandbox -run TestSBPLGolden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s: the generated profile changed; got:\n%s\nwant:\n%s\n(run with -update if the change is intended)", golden, got, want)
			}

			checkSBPL(t, p, prof, port)
		})
	}
}

// checkSBPL asserts the intent of a profile, independently of the golden
// file: deny by default, the workspace and HOME read-write, .git guarded
// unless allowed, the network as the policy says, no secret.
func checkSBPL(t *testing.T, p *Policy, prof string, port int) {
	t.Helper()
	lines := strings.Split(prof, "\n")
	index := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return i
			}
		}
		return -1
	}
	if lines[0] != "(version 1)" {
		t.Errorf("first line: got %q, want (version 1)", lines[0])
	}
	deny := index("(deny default)")
	if deny < 0 || deny > index("(allow") {
		t.Errorf("got (deny default) at line %d, want it before any allow rule", deny)
	}
	rw := index("(allow file-read* file-write*")
	if rw < 0 {
		t.Fatal("got no read-write rule")
	}
	var rwPaths []string
	for _, l := range lines[rw+1:] {
		if l == ")" {
			break
		}
		rwPaths = append(rwPaths, strings.TrimSpace(l))
	}
	want := []string{"(subpath " + sbplString(p.Workspace) + ")", "(subpath " + sbplString(p.Home) + ")"}
	if strings.Join(rwPaths, " ") != strings.Join(want, " ") {
		t.Errorf("read-write: got %q, want exactly the workspace and HOME %q", rwPaths, want)
	}

	git := filepath.Join(p.Workspace, ".git")
	guard := index("(deny file-write* (literal " + sbplString(git) + ")")
	if p.AllowGitConfig {
		if strings.Contains(prof, "/.git") {
			t.Errorf("AllowGitConfig: got a .git rule, want none")
		}
	} else {
		for _, g := range []string{"(subpath " + sbplString(filepath.Join(git, "hooks")) + ")", "(literal " + sbplString(filepath.Join(git, "config")) + ")", "(literal " + sbplString(filepath.Join(git, "commondir")) + ")"} {
			if guard < 0 || !strings.Contains(lines[guard], g) {
				t.Errorf("got no write denial of %s", g)
			}
		}
		// The later rule wins: the denial must follow the allowance.
		if guard < rw {
			t.Errorf("got the .git denial at line %d, before the read-write rule at %d", guard, rw)
		}
	}

	switch p.Network {
	case NetProvider:
		if n := strings.Count(prof, "(allow network"); n != 1 || !strings.Contains(prof, `(allow network-outbound (remote ip "localhost:`+strconv.Itoa(port)+`"))`) {
			t.Errorf("got %d network allowances, want only outbound to localhost:%d", n, port)
		}
		if !strings.Contains(prof, "(deny network-bind)") {
			t.Error("got no (deny network-bind)")
		}
	case NetNone:
		if strings.Contains(prof, "(allow network") || !strings.Contains(prof, "(deny network*)") {
			t.Error("network none: want (deny network*) and no allowance")
		}
	case NetHost:
		if !strings.Contains(prof, "(allow network*)") {
			t.Error("network host: got no (allow network*)")
		}
	}
	for _, kv := range p.Env {
		_, v, _ := strings.Cut(kv, "=")
		if strings.Contains(prof, v) {
			t.Errorf("got the environment value %q in the profile", v)
		}
	}
}

func TestSBPLEscapesPaths(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), `we"ird\dir`)
	p := sbplPolicy(t, root, NetNone)
	prof, err := p.SBPL(1)
	if err != nil {
		t.Fatal(err)
	}
	escaped := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p.Workspace)
	if !strings.Contains(prof, `(subpath "`+escaped+`")`) {
		t.Errorf("got:\n%s\nwant the workspace as %q", prof, `"`+escaped+`"`)
	}
	// Unescaped, the quote would end the string and the rest would be
	// read as rules.
	if strings.Contains(prof, `we"ird`) {
		t.Errorf("got an unescaped quote in:\n%s", prof)
	}
	checkSBPL(t, p, prof, 1)
	for _, s := range []struct{ in, want string }{
		{`plain`, `"plain"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{`\"`, `"\\\""`},
		{`")(allow default)(`, `"\")(allow default)("`},
	} {
		if got := sbplString(s.in); got != s.want {
			t.Errorf("sbplString(%q): got %s, want %s", s.in, got, s.want)
		}
	}
}

func TestSBPLRefusesInvalidPolicy(t *testing.T) {
	t.Parallel()
	p := sbplPolicy(t, t.TempDir(), NetNone)
	p.Workspace = "relative"
	if _, err := p.SBPL(1); err == nil {
		t.Error("got no error for a relative workspace")
	}
}
