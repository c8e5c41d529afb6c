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
	"os/exec"
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
// "```sh walkthrough", in order, run by a shell the way a reader pastes
// them, starting in the checkout (whose `make install` is the first step).
// A line "#> TEXT" after a command says that the command prints TEXT
// (stdout and stderr together); any command that exits non-zero fails the
// test. A block marked "```sh walkthrough interactive" holds one command
// that is run in a real terminal (tmux), in the directory and with the
// exported variables the commands before it left: its "#< TEXT" lines are
// typed at Claude Code's prompt (each once the prompt is there) and its
// "#> TEXT" lines must appear on the screen, in order; its exit status is
// the command's.
//
// What the test changes about the reader's machine, and nothing else:
//   - HOME and the XDG directories are fresh temporary ones; the Go build
//     and module caches are the machine's (GOCACHE, GOMODCACHE; GOTOOLCHAIN=local), so that
//     `make install` builds without the network, as on a reader's machine
//     with Go set up;
//   - Claude Code is test/node's, first on PATH (the README's
//     `npm install -g @anthropic-ai/claude-code`);
//   - the daemon listens on a free port instead of 8765 (daemon.listen),
//     so that the test never meets a daemon of the machine's;
//   - the built-in provider "anthropic" is pointed at a fake Anthropic API
//     (`ringlet providers add anthropic --base-url FAKE`), which accepts
//     only the key the reader "pastes": the script's standard input. The
//     fake plays the model: asked to "delete FILE" it answers with the
//     tool call `rm FILE`, anything else with its text.

// walkthroughTimeout bounds each part of the walk-through run by the
// shell: the first builds Ringlet.
const walkthroughTimeout = 6 * time.Minute

// walkStep is one command of the walk-through and what it must print.
type walkStep struct {
	Line  int    // of its first line in the README
	Text  string // as written, continuation and here-document lines included
	Wants []string
	// Interactive is a command run in a terminal; Acts are its "#<"
	// (type) and "#>" (see) lines in order.
	Interactive bool
	Acts        []walkAct
}

// walkAct is a line of an interactive step: text to type, or to see.
type walkAct struct {
	Type bool
	Text string
}

func TestReadmeWalkthrough(t *testing.T) {
	requireSandbox(t)
	requireNode(t)
	requireTmux(t)
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
	// Symbolic links resolved: `profiles run` binds the program's
	// directory into the sandbox.
	claudeDir, err := filepath.EvalSymlinks(filepath.Dir(claudeBin(t)))
	if err != nil {
		t.Fatal(err)
	}
	e.ExtraEnv = []string{"PATH=" + claudeDir + ":" + os.Getenv("PATH"), "GOTOOLCHAIN=local"}
	for _, v := range []string{"GOCACHE", "GOMODCACHE"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", v, err)
		}
		e.ExtraEnv = append(e.ExtraEnv, v+"="+strings.TrimSpace(string(out)))
	}
	mustRun(t, e, "config", "set", "daemon.listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	mustRun(t, e, "providers", "add", "anthropic", "--replace", "--base-url", srv.URL, "--format", "anthropic", "--auth", "x-api-key")
	// providers add started a daemon; the walk-through starts its own.
	mustRun(t, e, "daemon", "stop")
	// A reader has an SSH key the sandboxed agent must not see.
	writeFile(t, filepath.Join(e.Home, ".ssh", "id_ed25519"), "SSH-CANARY", 0o600)
	t.Cleanup(func() { e.exec("daemon", "stop") })

	checkout, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out, ran, err := runWalkthrough(t, e, fake, checkout, steps, key+"\n")
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
	// stored key, never a session token, from the sandboxed Claude Code
	// (the question, the refused tool call's result, print mode) and from
	// curl outside; the file the refused call would delete is there.
	reqs := fake.Requests()
	if len(reqs) < 4 {
		t.Errorf("the fake provider got %d requests, want at least 4 (say hi, delete and its tool result, print mode, curl)", len(reqs))
	}
	refused := false
	for _, r := range reqs {
		if tr, ok := toolResultOf(r.Body); ok && tr.IsError && strings.Contains(tr.Text, "no rm here") {
			refused = true
		}
	}
	if !refused {
		t.Error("the provider got no tool_result with the hook's refusal")
	}
	if data, err := os.ReadFile(filepath.Join(e.Home, "ringlet-demo", "notes.txt")); err != nil || string(data) != "keep me\n" {
		t.Errorf("notes.txt after the refused rm: got %q, %v; want it kept", data, err)
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
	if len(launches.Records) != 2 || !launches.Records[0].Detail.Sandbox || !launches.Records[1].Detail.Sandbox {
		t.Errorf("profile.launch records: got %s, want two (interactive, print mode) with \"sandbox\": true", stdout)
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
	interactive := false // the block is run in a terminal
	blockStart := 0      // the line of the block's fence
	heredoc := ""        // the delimiter of an open here-document
	cont := false        // the previous line ended with a backslash
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case !in:
			switch strings.TrimSpace(line) {
			case "```sh walkthrough":
				in, interactive = true, false
			case "```sh walkthrough interactive":
				in, interactive = true, true
			}
			blockStart = n
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
		case strings.HasPrefix(line, "#>") || strings.HasPrefix(line, "#<"):
			if len(steps) == 0 {
				return nil, fmt.Errorf("line %d: a %s line before any command", n, line[:2])
			}
			st := &steps[len(steps)-1]
			text := strings.TrimSpace(line[2:])
			switch {
			case st.Interactive:
				st.Acts = append(st.Acts, walkAct{Type: line[1] == '<', Text: text})
			case line[1] == '<':
				return nil, fmt.Errorf("line %d: a #< line outside an interactive block", n)
			default:
				st.Wants = append(st.Wants, text)
			}
			continue
		case strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#"):
			continue
		default:
			if interactive && len(steps) > 0 && steps[len(steps)-1].Interactive && steps[len(steps)-1].Line > blockStart {
				return nil, fmt.Errorf("line %d: an interactive block holds one command", n)
			}
			steps = append(steps, walkStep{Line: n, Text: line, Interactive: interactive})
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

// runWalkthrough runs the steps, stdin given to the first part, and
// splits what they printed by command. The commands between two
// interactive steps are one sh script, which stops at the first command
// that fails; it starts where the one before it ended (its directory and
// exported variables, kept in files), the first in dir.
func runWalkthrough(t *testing.T, e *env, fake *fakeprovider.Provider, dir string, steps []walkStep, stdin string) (string, []stepRun, error) {
	t.Helper()
	state, cwd := filepath.Join(e.Root, "walkthrough.env"), filepath.Join(e.Root, "walkthrough.cwd")
	writeFile(t, cwd, dir, 0o600)
	var all strings.Builder
	var ran []stepRun
	for i := 0; i < len(steps); {
		if steps[i].Interactive {
			r := runInteractive(t, e, fake, steps[i], state, cwd)
			all.WriteString(r.output)
			ran = append(ran, r)
			if r.code != 0 {
				return all.String(), ran, nil
			}
			i++
			continue
		}
		j := i
		for j < len(steps) && !steps[j].Interactive {
			j++
		}
		out, part, err := runScript(t, e, steps[i:j], i, state, cwd, stdin)
		all.WriteString(out)
		ran = append(ran, part...)
		if err != nil || len(part) < j-i || part[len(part)-1].code != 0 {
			return all.String(), ran, err
		}
		stdin = ""
		i = j
	}
	return all.String(), ran, nil
}

// runScript runs steps (the first numbered first) in one sh that starts in
// the directory in cwd with the variables in state, and leaves its own
// there when it ends.
func runScript(t *testing.T, e *env, steps []walkStep, first int, state, cwd, stdin string) (string, []stepRun, error) {
	t.Helper()
	var script strings.Builder
	mark := "@@ringlet-walkthrough-" + sbRandomHex(4)
	fmt.Fprintf(&script, "if [ -f '%s' ]; then . '%s'; fi\ncd \"$(cat '%s')\" || exit 1\n", state, state, cwd)
	for i, s := range steps {
		fmt.Fprintf(&script, "printf '\\n%s begin %d\\n'\n", mark, first+i)
		script.WriteString(s.Text + "\n")
		fmt.Fprintf(&script, "rc=$?; printf '\\n%s end %d %%d\\n' \"$rc\"; [ \"$rc\" -eq 0 ] || exit 1\n", mark, first+i)
	}
	fmt.Fprintf(&script, "export -p > '%s'\npwd > '%s'\n", state, cwd)
	path := filepath.Join(e.Root, fmt.Sprintf("walkthrough-%d.sh", first))
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

// deleteAsk is what the walk-through types to make the fake model ask for
// a tool call.
var deleteAsk = regexp.MustCompile(`^delete (\S+)$`)

// runInteractive runs an interactive step in a terminal, where the shell
// before it left off, and plays its "#<" and "#>" lines: each text to type
// once Claude Code's prompt is there (a question is answered with the
// fake's text), each text to see on the screen.
func runInteractive(t *testing.T, e *env, fake *fakeprovider.Provider, s walkStep, state, cwd string) stepRun {
	t.Helper()
	dir, err := os.ReadFile(cwd)
	if err != nil {
		t.Fatal(err)
	}
	m := startTmux(t, e.Environ(), strings.TrimSpace(string(dir)), "/bin/sh", "-c", `. "$0" && `+s.Text, state)
	for _, a := range s.Acts {
		if !a.Type {
			m.WaitText(a.Text)
			continue
		}
		m.WaitMatch(claudePrompt)
		if d := deleteAsk.FindStringSubmatch(a.Text); d != nil {
			cmd := "rm " + d[1]
			fake.ToolUse.Store(&cmd)
		} else {
			fake.ToolUse.Store(nil)
		}
		m.Type(a.Text)
		m.WaitText("❯ " + a.Text)
		m.Keys("Enter")
		if !strings.HasPrefix(a.Text, "/") && !deleteAsk.MatchString(a.Text) {
			m.WaitText(fakeprovider.AnswerText(fakeprovider.DefaultTextEvents))
		}
	}
	fake.ToolUse.Store(nil)
	code := m.ExitStatus()
	screen := m.Screen()
	e.transcript.WriteString(screen)
	return stepRun{output: screen, code: code}
}
