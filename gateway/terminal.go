package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/creack/pty"
	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/dashboard"
	"github.com/neullabs/ringlet/sandbox"
)

// scrollbackSize bounds what a terminal keeps for viewers who attach late.
const scrollbackSize = 256 << 10

// viewerBuffer is how many output chunks a viewer may fall behind before
// it is dropped; the session never waits for a viewer.
const viewerBuffer = 512

// terminal is an agent the daemon runs under a pseudo-terminal, for
// 'profiles run --remote'. Viewers attach over a WebSocket.
type terminal struct {
	sess    *session
	cmd     *exec.Cmd
	pty     *os.File
	started time.Time

	mu      sync.Mutex
	scroll  []byte
	viewers map[*termViewer]struct{}
	exited  bool
	// lease is held on the sandbox's trees until the agent exits.
	lease    *sandbox.Lease
	exitCode int
	done     chan struct{}
}

// terminals runs the agents of 'profiles run --remote': each session's
// launch plan under a pseudo-terminal of the daemon, with a scrollback,
// viewers over WebSockets, and the session ended when the agent exits.
type terminals struct {
	o    terminalsOptions
	mu   sync.Mutex
	byID map[string]*terminal // by session
}

// terminalsOptions configure the terminals.
type terminalsOptions struct {
	Sessions *sessions
	// StateDir holds the workspace leases a terminal takes.
	StateDir string
	Rec      *recorder
	Life     *life
	Log      *slog.Logger
	// ShutdownTimeout bounds how long stopAll waits for the agents.
	ShutdownTimeout time.Duration
	// Logins are the dashboard's: a terminal page's input renews its
	// login (handleUIAttach).
	Logins *dashboard.Logins
}

func newTerminals(o terminalsOptions) *terminals {
	return &terminals{o: o, byID: map[string]*terminal{}}
}

type termViewer struct {
	ch   chan []byte
	slow chan struct{}
}

func (t *terminal) info() api.TerminalInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return api.TerminalInfo{Session: t.sess.ID, Profile: t.sess.Profile.Alias, Started: t.started, PID: t.cmd.Process.Pid,
		Running: !t.exited, ExitCode: t.exitCode, Viewers: len(t.viewers)}
}

func (tm *terminals) handleTerminalStart(w http.ResponseWriter, r *http.Request) {
	sess := tm.o.Sessions.find(w, r)
	if sess == nil {
		return
	}
	var req api.TerminalStart
	if !decodeJSON(w, r, &req) {
		return
	}
	tm.mu.Lock()
	_, exists := tm.byID[sess.ID]
	tm.mu.Unlock()
	if exists {
		writeError(w, http.StatusConflict, "exists", "session "+sess.ID+" already has a terminal")
		return
	}
	// What runs is the launch the daemon prepared for this session, never
	// a command line a client sends.
	plan := sess.takePlan()
	if plan == nil {
		writeError(w, http.StatusConflict, "no_plan", "session "+sess.ID+" has no launch plan, or it was started already: start an agent with 'ringlet profiles run --remote'")
		return
	}
	if !plan.Sandboxed {
		sess.returnPlan()
		writeError(w, http.StatusBadRequest, "bad_request", "a remote terminal runs its agent in the sandbox; this session's launch has none")
		return
	}
	// The program the daemon starts is an action of its own: recorded
	// (the sandbox's summary, and the program by its path; its options
	// reach it on a pipe, not here) before it runs, refused if that
	// cannot be.
	detail := maps.Clone(plan.Summary)
	detail["via"], detail["program"], detail["args"] = "terminal", plan.Argv[0], len(plan.Argv)-1
	if !tm.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindProfileLaunch, Profile: sess.Profile.Alias, Session: sess.ID, Actor: audit.ActorAdmin,
		Target: sess.Profile.Agent, Decision: audit.Allow, Detail: audit.DetailJSON(detail)}) {
		sess.returnPlan()
		return
	}
	// The terminal holds the sandbox's trees until its agent exits, which
	// may be after the session (and the plan's own lease) has ended.
	lease := sandbox.NewLease(tm.o.StateDir)
	if err := lease.HoldTrees(plan.Trees); err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "could not hold the sandbox's workspace: "+err.Error())
		return
	}
	if !sess.planHeld() {
		lease.Release()
		writeError(w, http.StatusNotFound, "not_found", "session "+sess.ID+" ended before its agent started")
		return
	}
	cmd := exec.Command(plan.Argv[0], plan.Argv[1:]...)
	pipes, err := sandbox.NewPipes(plan.Files)
	if err != nil {
		lease.Release()
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	cmd.ExtraFiles = pipes.Files()
	cmd.Env = append([]string{}, plan.Env...)
	cmd.Dir = plan.Dir
	size := &pty.Winsize{Cols: max(req.Cols, 20), Rows: max(req.Rows, 5)}
	// The pty is not made bwrap's controlling terminal: the agent inside
	// (after bwrap's --new-session) takes it as its own, so that resizes
	// reach it as SIGWINCH. bwrap leads a process group, for kill.
	f, err := startOnPTY(cmd, size)
	// bwrap reads all its options first; a pipe holds 64 KiB.
	pipes.Started(err == nil)
	if err != nil {
		lease.Release()
		writeError(w, http.StatusBadRequest, "start_failed", "could not start the agent: "+err.Error())
		return
	}
	t := &terminal{lease: lease, sess: sess, cmd: cmd, pty: f, started: time.Now().UTC(), viewers: map[*termViewer]struct{}{}, done: make(chan struct{})}
	tm.mu.Lock()
	tm.byID[sess.ID] = t
	tm.mu.Unlock()
	tm.o.Life.streams.Add(1)
	go func() {
		defer tm.o.Life.streams.Done()
		tm.run(t)
	}()
	tm.o.Log.Info("remote terminal started", "session", sess.ID, "pid", cmd.Process.Pid)
	writeJSON(w, http.StatusCreated, t.info())
}

// run copies the agent's output to the scrollback and viewers
// until it exits, then ends the session.
func (tm *terminals) run(t *terminal) {
	buf := make([]byte, 32<<10)
	for {
		n, err := t.pty.Read(buf)
		if n > 0 {
			chunk := append([]byte(nil), buf[:n]...)
			t.mu.Lock()
			t.scroll = append(t.scroll, chunk...)
			if over := len(t.scroll) - scrollbackSize; over > 0 {
				t.scroll = append(t.scroll[:0], t.scroll[over:]...)
			}
			for v := range t.viewers {
				select {
				case v.ch <- chunk:
				default:
					close(v.slow)
					delete(t.viewers, v)
				}
			}
			t.mu.Unlock()
		}
		if err != nil {
			break
		}
	}
	err := t.cmd.Wait()
	t.pty.Close()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	}
	// Whatever the agent left in its process group goes with it.
	syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
	t.lease.Release()
	t.mu.Lock()
	t.exited, t.exitCode = true, code
	t.mu.Unlock()
	close(t.done)
	tm.o.Sessions.end(context.Background(), t.sess.ID, "agent exited with code "+itoaInt(code), audit.ActorDaemon)
}

func itoaInt(i int) string { return strconv.Itoa(i) }

func (tm *terminals) find(w http.ResponseWriter, r *http.Request) *terminal {
	id := chi.URLParam(r, "id")
	tm.mu.Lock()
	t := tm.byID[id]
	tm.mu.Unlock()
	if t == nil {
		writeError(w, http.StatusNotFound, "not_found", "no remote terminal for session "+id)
	}
	return t
}

func (tm *terminals) handleTerminalList(w http.ResponseWriter, r *http.Request) {
	tm.mu.Lock()
	ts := make([]*terminal, 0, len(tm.byID))
	for _, t := range tm.byID {
		ts = append(ts, t)
	}
	tm.mu.Unlock()
	out := make([]api.TerminalInfo, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.info())
	}
	writeJSON(w, http.StatusOK, api.TerminalList{Terminals: out})
}

func (tm *terminals) handleTerminalInfo(w http.ResponseWriter, r *http.Request) {
	if t := tm.find(w, r); t != nil {
		writeJSON(w, http.StatusOK, t.info())
	}
}

// handleTerminalKill ends the agent's whole process group and so its
// session.
func (tm *terminals) handleTerminalKill(w http.ResponseWriter, r *http.Request) {
	t := tm.find(w, r)
	if t == nil {
		return
	}
	syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-t.done:
	case <-time.After(10 * time.Second):
		writeError(w, http.StatusInternalServerError, "internal", "the agent did not exit within 10s of SIGKILL")
		return
	}
	tm.mu.Lock()
	delete(tm.byID, t.sess.ID)
	tm.mu.Unlock()
	writeJSON(w, http.StatusOK, t.info())
}

// kill ends the remote agent of a session that was killed, if it has one,
// as 'terminal kill' does, and waits for it (bounded). It reports whether
// there was one.
func (tm *terminals) kill(id string) bool {
	tm.mu.Lock()
	t := tm.byID[id]
	tm.mu.Unlock()
	if t == nil {
		return false
	}
	syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-t.done:
	case <-time.After(killWait):
		tm.o.Log.Warn("a killed session's remote agent did not exit after SIGKILL", "session", id)
	}
	return true
}

// stopAll ends every remote agent when the daemon stops, as
// 'terminal kill' does: SIGKILL to bwrap's process group, which takes the
// sandbox with it (--die-with-parent, its own PID namespace). Each one's
// session ends as its agent exits (run). It waits for them up to
// the shutdown deadline.
func (tm *terminals) stopAll() {
	tm.mu.Lock()
	ts := make([]*terminal, 0, len(tm.byID))
	for _, t := range tm.byID {
		ts = append(ts, t)
	}
	tm.mu.Unlock()
	for _, t := range ts {
		syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
	}
	deadline := time.NewTimer(tm.o.ShutdownTimeout)
	defer deadline.Stop()
	for _, t := range ts {
		select {
		case <-t.done:
		case <-deadline.C:
			tm.o.Log.Warn("a remote agent did not exit after SIGKILL", "session", t.sess.ID)
			return
		}
	}
}

var termSignals = map[string]syscall.Signal{"INT": syscall.SIGINT, "TERM": syscall.SIGTERM, "HUP": syscall.SIGHUP, "KILL": syscall.SIGKILL, "QUIT": syscall.SIGQUIT}

// handleTerminalAttach is the WebSocket a viewer attaches with: binary
// frames carry terminal bytes both ways, text frames carry JSON control
// messages. The scrollback is sent first. The CLI attaches with the admin
// token ("bearer, TOKEN"), the dashboard's terminal page with its login
// ("ringlet-page, KEY", handleUIAttach); the answer names the protocol
// alone. websocket.Accept refuses an Origin that is not the daemon's own
// (the Host guard has already): a page elsewhere cannot attach.
func (tm *terminals) handleTerminalAttach(w http.ResponseWriter, r *http.Request) {
	tm.attach(w, r, nil)
}

// attach is handleTerminalAttach; typed, when not nil, is called on each
// input the viewer sends.
func (tm *terminals) attach(w http.ResponseWriter, r *http.Request, typed func()) {
	t := tm.find(w, r)
	if t == nil {
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"bearer", pageProtocol}})
	if err != nil {
		return
	}
	tm.o.Life.streams.Add(1)
	defer tm.o.Life.streams.Done()
	// Every viewer is on record before it sees or types anything; one
	// that cannot be is sent away.
	if err := tm.o.Rec.record(r.Context(), audit.Record{Kind: audit.KindTerminalAttach, Profile: t.sess.Profile.Alias, Session: t.sess.ID,
		Actor: actorOf(r), Target: t.sess.Profile.Agent, Decision: audit.Allow, Detail: audit.DetailJSON(map[string]any{"remote": r.RemoteAddr})}); err != nil {
		c.Close(websocket.StatusTryAgainLater, "refused: the attach could not be recorded in the audit log")
		return
	}
	// A login that ended meanwhile sees nothing, not even the scrollback.
	if r.Context().Err() != nil {
		c.Close(websocket.StatusNormalClosure, endedBy(r.Context()))
		return
	}
	c.SetReadLimit(1 << 20)
	v := &termViewer{ch: make(chan []byte, viewerBuffer), slow: make(chan struct{})}
	t.mu.Lock()
	backlog := append([]byte(nil), t.scroll...)
	exited := t.exited
	if !exited {
		t.viewers[v] = struct{}{}
	}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.viewers, v)
		t.mu.Unlock()
	}()
	ctx := r.Context()
	write := func(b []byte) error {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return c.Write(wctx, websocket.MessageBinary, b)
	}
	if len(backlog) > 0 && write(backlog) != nil {
		return
	}
	if exited {
		c.Close(websocket.StatusNormalClosure, "the agent has exited")
		return
	}
	// Input from the viewer.
	inputDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(inputDone)
		for {
			typ, data, err := c.Read(context.WithoutCancel(ctx))
			if err != nil {
				return
			}
			if typed != nil {
				typed()
			}
			if typ == websocket.MessageBinary {
				_, _ = t.pty.Write(data) // fails only once the agent has gone
				continue
			}
			var m api.TerminalControl
			if json.Unmarshal(data, &m) != nil {
				continue
			}
			switch m.Type {
			case "resize":
				if m.Cols > 0 && m.Rows > 0 {
					_ = pty.Setsize(t.pty, &pty.Winsize{Cols: m.Cols, Rows: m.Rows})
				}
			case "signal":
				if sig, ok := termSignals[m.Signal]; ok {
					syscall.Kill(-t.cmd.Process.Pid, sig)
				}
			}
		}
	})
	defer wg.Wait()
	for {
		select {
		case b := <-v.ch:
			if write(b) != nil {
				c.CloseNow()
				return
			}
		case <-v.slow:
			c.Close(websocket.StatusPolicyViolation, "viewer too slow; reattach to see the scrollback")
			return
		case <-t.done:
			// Drain what is left, then say goodbye.
		drain:
			for {
				select {
				case b := <-v.ch:
					if write(b) != nil {
						break drain
					}
				default:
					break drain
				}
			}
			c.Close(websocket.StatusNormalClosure, "the agent exited with code "+itoaInt(t.info().ExitCode))
			return
		case <-inputDone:
			c.CloseNow()
			return
		case <-ctx.Done():
			// The admin token was rotated, or the dashboard's login
			// ended (handleUIAttach).
			c.Close(websocket.StatusPolicyViolation, endedBy(ctx))
			return
		case <-tm.o.Life.closing.Done():
			c.Close(websocket.StatusGoingAway, "daemon shutting down")
			return
		}
	}
}

// startOnPTY starts cmd with a new pseudo-terminal on its stdio, in a
// process group of its own, without making it the controlling terminal.
func startOnPTY(cmd *exec.Cmd, size *pty.Winsize) (*os.File, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, err
	}
	defer slave.Close()
	if err := pty.Setsize(master, size); err != nil {
		master.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		master.Close()
		return nil, err
	}
	return master, nil
}
