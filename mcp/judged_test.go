package mcp

import (
	"os"
	"strings"
	"sync"
	"testing"
)

// TestNoCallBeforeJudged: a call that arrives while its server restarts
// reaches the new run only once what that run is has been judged. The
// start is held between its outcome and its publish (where the call once
// went through); the new run is another program, so the call is refused
// and never reaches it.
func TestNoCallBeforeJudged(t *testing.T) {
	w := newWorld(t)
	exe := copyProgram(t)
	rec := t.TempDir() + "/rec"
	argv := upstreamCommand(t, "-record", rec)
	argv[0] = exe
	w.addServer("a", "one", argv)
	c := w.ready(t, "a1")
	if r := c.tool("one__echo", map[string]any{"text": "first"}); r.IsError {
		t.Fatalf("first call: %s", r.text())
	}
	if n := len(recorded(t, rec)); n != 1 {
		t.Fatalf("calls recorded: got %d, want 1", n)
	}

	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hook := func(u *upstream) {
		if u.hub.srv != w.srv || u.cfg.Name != "one" {
			return
		}
		once.Do(func() { close(reached) })
		<-release
	}
	testHookStarted.Store(&hook)
	t.Cleanup(func() { testHookStarted.Store(nil) })
	defer close(release)

	// The run ends and its program is replaced: the next call starts
	// the replaced one.
	if n := w.srv.KillServers("a"); n != 1 {
		t.Fatalf("KillServers: got %d, want 1", n)
	}
	f, err := os.OpenFile(exe, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r := c.tool("one__echo", map[string]any{"text": "second"})
	select {
	case <-reached:
	default:
		t.Fatal("the call did not start the server")
	}
	if !r.IsError || !strings.Contains(r.text(), "not served now") {
		t.Errorf("call while the replaced program's start was not yet published: got %v %q, want refused", r.IsError, r.text())
	}
	if n := len(recorded(t, rec)); n != 1 {
		t.Errorf("calls recorded: got %d, want 1 (the call reached the replaced program)", n)
	}
}
