//go:build linux

package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// The README's five-minute walk-through is run here exactly as written, so
// it cannot drift from the code. Its commands are the fenced blocks marked
// "```sh walkthrough", in order, run by one shell the way a reader pastes
// them. A line "#> TEXT" after a command says that the command prints
// TEXT (stdout and stderr together); any command that exits non-zero
// fails the test.
//
// What the test changes about the reader's machine, and nothing else:
//   - HOME and the XDG directories are fresh temporary ones, and PATH starts
//     with the directory of the ringlet binary under test (the README's
//     install step puts ringlet on PATH);
//   - the daemon listens on a free port instead of 8765 (daemon.listen),
//     so that the test never meets a daemon of the machine's;
//   - the built-in provider "anthropic" is pointed at a fake Anthropic API
//     (`ringlet providers add anthropic --base-url FAKE`), which accepts
//     only the key the reader "pastes": the script's standard input.

// walkthroughTimeout bounds the whole walk-through.
const walkthroughTimeout = 3 * time.Minute

// walkStep is one command of the walk-through and what it must print.
type walkStep struct {
	Line  int    // of its first line in the README
	Text  string // as written, continuation and here-document lines included
	Wants []string
}

func TestReadmeWalkthrough(t *testing.T) {
	requireSandbox(t)
	if _, err := os.Stat("/usr/bin/curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the walk-through needs curl (Debian package curl): %v", err)
		}
		t.Skipf("skipping: the walk-through needs curl: %v", err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := parseWalkthrough(readme)
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}

	e := newEnv(t)
	key := proxyCanary("walkthrough")
	fake := fakeprovider.New(key)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	e.ExtraEnv = []string{"PATH=" + filepath.Dir(ringletBin) + ":" + os.Getenv("PATH")}
	mustRun(t, e, "config", "set", "daemon.listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	mustRun(t, e, "providers", "add", "anthropic", "--replace", "--base-url", srv.URL, "--format", "anthropic", "--auth", "x-api-key")
	// providers add started a daemon; the walk-through starts its own.
	mustRun(t, e, "daemon", "stop")
	// A reader has an SSH key the sandboxed agent must not see.
	writeFile(t, filepath.Join(e.Home, ".ssh", "id_ed25519"), "SSH-CANARY", 0o600)
	t.Cleanup(func() { e.exec("daemon", "stop") })

	out, ran, err := runWalkthrough(t, e, steps, key+"\n")
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		if i >= len(ran) {
			t.Fatalf("README.md:%d: the walk-through stopped before this command:\n%s\nwhole output:\n%s", s.Line, s.Text, out)
		}
		r := ran[i]
		if r.code != 0 {
			t.Fatalf("README.md:%d: exit %d, want 0:\n%s\noutput:\n%s", s.Line, r.code, s.Text, r.output)
		}
		for _, w := range s.Wants {
			if !strings.Contains(r.output, w) {
				t.Errorf("README.md:%d: got output %q, want it to contain %q (the #> line); command:\n%s", s.Line, r.output, w, s.Text)
			}
		}
	}

	// What the walk-through claims happened did: the provider saw the
	// stored key, never a session token, once from outside the sandbox
	// and once from inside.
	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Errorf("the fake provider got %d requests, want 2 (profiles env, profiles run)", len(reqs))
	}
	for _, r := range reqs {
		if r.Key != key {
			t.Errorf("the fake provider got key %q, want the key the walk-through stored", r.Key)
		}
		if r.Status != 200 {
			t.Errorf("the fake provider answered %d, want 200", r.Status)
		}
	}
	// The agent of `profiles run` ran in the sandbox (its output alone
	// would read the same on a machine without internet).
	stdout := mustRun(t, e, "audit", "query", "--kind", "profile.launch", "--json")
	var launches struct {
		Records []struct {
			Detail struct {
				Sandbox bool `json:"sandbox"`
			} `json:"detail"`
		} `json:"records"`
	}
	if err := json.Unmarshal([]byte(stdout), &launches); err != nil {
		t.Fatalf("audit query --json: %v\n%s", err, stdout)
	}
	if len(launches.Records) != 1 || !launches.Records[0].Detail.Sandbox {
		t.Errorf("profile.launch records: got %s, want one with \"sandbox\": true", stdout)
	}
	e.AssertNoSecret(key)
	if strings.Contains(out, key) || strings.Contains(out, "SSH-CANARY") {
		t.Errorf("the walk-through printed the key or the SSH canary:\n%s", out)
	}
}

// parseWalkthrough returns the commands of the README's walk-through
// blocks. A command is a line with its backslash continuations and the
// here-documents it opens; "#>" lines after it are what it must print;
// other comments are skipped.
func parseWalkthrough(readme []byte) ([]walkStep, error) {
	var steps []walkStep
	in := false
	heredoc := "" // the delimiter of an open here-document
	cont := false // the previous line ended with a backslash
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case !in:
			in = strings.TrimSpace(line) == "```sh walkthrough"
			continue
		case heredoc != "":
			steps[len(steps)-1].Text += "\n" + line
			if line == heredoc {
				heredoc = ""
			}
			continue
		case cont:
			steps[len(steps)-1].Text += "\n" + line
		case strings.TrimSpace(line) == "```":
			in = false
			continue
		case strings.HasPrefix(line, "#>"):
			if len(steps) == 0 {
				return nil, fmt.Errorf("line %d: a #> line before any command", n)
			}
			want := strings.TrimSpace(strings.TrimPrefix(line, "#>"))
			steps[len(steps)-1].Wants = append(steps[len(steps)-1].Wants, want)
			continue
		case strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#"):
			continue
		default:
			steps = append(steps, walkStep{Line: n, Text: line})
		}
		cont = strings.HasSuffix(line, "\\")
		if m := heredocStart.FindStringSubmatch(line); m != nil {
			heredoc = m[1]
		}
	}
	if in {
		return nil, fmt.Errorf("a walkthrough block is not closed")
	}
	if heredoc != "" {
		return nil, fmt.Errorf("a here-document is not closed by %q", heredoc)
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("no ```sh walkthrough block")
	}
	return steps, sc.Err()
}

// heredocStart finds a here-document operator and its delimiter, quoted
// or not (<<-, which strips tabs, is not used).
var heredocStart = regexp.MustCompile(`<<\s*'?"?([A-Za-z_]+)'?"?\s*$`)

// stepRun is what one command printed and its exit code.
type stepRun struct {
	output string
	code   int
}

// runWalkthrough runs the steps in one sh, stdin given, and splits what
// it printed by command. The shell stops at the first command that fails.
func runWalkthrough(t *testing.T, e *env, steps []walkStep, stdin string) (string, []stepRun, error) {
	t.Helper()
	var script strings.Builder
	mark := "@@ringlet-walkthrough-" + sbRandomHex(4)
	for i, s := range steps {
		fmt.Fprintf(&script, "printf '\\n%s begin %d\\n'\n", mark, i)
		script.WriteString(s.Text + "\n")
		fmt.Fprintf(&script, "rc=$?; printf '\\n%s end %d %%d\\n' \"$rc\"; [ \"$rc\" -eq 0 ] || exit 1\n", mark, i)
	}
	path := filepath.Join(e.Root, "walkthrough.sh")
	writeFile(t, path, script.String(), 0o600)

	ctx, cancel := context.WithTimeout(t.Context(), walkthroughTimeout)
	defer cancel()
	cmd := e.command(ctx, "sh", path)
	cmd.Dir = e.Home
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	e.transcript.WriteString(out.String())
	if ctx.Err() != nil {
		return out.String(), nil, fmt.Errorf("the walk-through did not finish within %s; output:\n%s", walkthroughTimeout, out.String())
	}
	if err != nil && cmd.ProcessState == nil {
		return out.String(), nil, fmt.Errorf("run the walk-through: %v", err)
	}

	var ran []stepRun
	var cur *strings.Builder
	for _, l := range strings.SplitAfter(out.String(), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 3 && f[0] == mark && f[1] == "begin":
			cur = &strings.Builder{}
		case len(f) == 4 && f[0] == mark && f[1] == "end" && cur != nil:
			code, _ := strconv.Atoi(f[3])
			ran = append(ran, stepRun{output: cur.String(), code: code})
			cur = nil
		case cur != nil:
			cur.WriteString(l)
		}
	}
	if cur != nil {
		// The shell itself died inside a command.
		ran = append(ran, stepRun{output: cur.String(), code: -1})
	}
	return out.String(), ran, nil
}
