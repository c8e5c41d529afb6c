package cli

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/config"
)

// runHold holds the session of 'profiles run' for as long as its agent
// runs, across a restart of the daemon: when the daemon says it restarts
// (or goes away without a word), the agent keeps running, its requests
// failing to connect meanwhile, and the hold is taken again from the next
// daemon within the grace. If no daemon comes back in time, or the one
// that does refuses the session (revoked meanwhile, expired, not kept),
// the agent is stopped (stop closes; why says why).
type runHold struct {
	a   *app
	id  string
	pid int // the daemon that holds it, as its state file says

	mu    sync.Mutex
	c     *client.Client // the daemon that holds it now
	lease *client.Lease
	why   string // why the agent was stopped
	hard  bool   // it must stop at once (SIGKILL): its session was killed

	stop chan struct{} // closed when the agent must stop
	quit chan struct{} // closed by release
	done chan struct{} // closed when watch returns
}

// holdRun takes the lease of session id from c and watches it.
func (a *app) holdRun(ctx context.Context, c *client.Client, id string) (*runHold, error) {
	lease, err := c.HoldSession(ctx, id)
	if err != nil {
		return nil, err
	}
	h := &runHold{a: a, id: id, c: c, lease: lease, pid: a.daemonPID(), stop: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	go h.watch(ctx)
	return h, nil
}

// client is the daemon that holds the session now.
func (h *runHold) client() *client.Client {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.c
}

// stopped says why the agent was stopped; "" when it was not.
func (h *runHold) stopped() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.why
}

// release lets go of the session (it then ends unless it has) and waits
// for the watch to return.
func (h *runHold) release() {
	select {
	case <-h.quit:
		return
	default:
	}
	close(h.quit)
	// The lease first: the watch returns when its answer ends. A lease
	// taken again meanwhile is let go once the watch has returned.
	h.mu.Lock()
	lease := h.lease
	h.mu.Unlock()
	lease.Release()
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lease.Release()
}

// watch follows the lease's events until the session ends, the hold is
// released, or the agent must stop.
func (h *runHold) watch(ctx context.Context) {
	defer close(h.done)
	for {
		h.mu.Lock()
		events := h.lease.Events
		h.mu.Unlock()
		var restarting, ended, killed bool
		var grace time.Duration
		var reason string
		for ev := range events {
			if ev.Restarting {
				restarting, grace = true, time.Duration(ev.GraceSeconds)*time.Second
			}
			if ev.Ended {
				ended, killed, reason = true, ev.Killed, ev.Reason
			}
		}
		select {
		case <-h.quit:
			return
		default:
		}
		if ended {
			// Over while the daemon runs (revoked, expired, killed): an
			// agent left running would only meet refusals, so it is
			// stopped, at once when the session was killed. (A sandbox's
			// processes the daemon kills itself; this is what stops an
			// agent run with --no-sandbox.)
			why := "session " + h.id + " ended"
			if reason != "" {
				why += " (" + reason + ")"
			}
			h.stopAgentNow(why, killed)
			return
		}
		why := "the daemon stopped without keeping session " + h.id + " (killed or crashed?)"
		if !restarting {
			// No word: the daemon died, and the session with it, unless
			// it comes back knowing it. Waited for as long as this
			// user's daemon would wait for a launcher.
			grace = h.a.restartGrace()
		}
		if grace <= 0 {
			h.stopAgent(why)
			return
		}
		lease, c, refused := h.rehold(ctx, grace)
		if lease == nil {
			if refused != "" {
				why = refused
			} else if restarting {
				why = fmt.Sprintf("no daemon came back within %s to hold session %s again", grace, h.id)
			}
			select {
			case <-h.quit:
				return
			default:
			}
			h.stopAgent(why)
			return
		}
		h.mu.Lock()
		h.c, h.lease = c, lease
		h.mu.Unlock()
	}
}

// rehold takes the lease again from the next daemon, within grace. It
// returns the lease, or why the daemon that answered refused it ("" when
// none answered in time, or the hold was released).
func (h *runHold) rehold(ctx context.Context, grace time.Duration) (*client.Lease, *client.Client, string) {
	deadline := time.Now().Add(grace)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-h.quit:
			return nil, nil, ""
		case <-ctx.Done():
			return nil, nil, ""
		case <-tick.C:
		}
		// The daemon that is stopping may still answer for a moment,
		// without the session: only another one is asked. (A daemon
		// named by RINGLET_URL has no state file here to tell.)
		if pid := h.a.daemonPID(); h.a.getenv("RINGLET_URL") == "" && (pid == 0 || (pid == h.pid && client.ProcessAlive(pid))) {
			continue
		}
		c, err := h.a.daemonClient()
		if err != nil {
			continue
		}
		lease, err := c.HoldSession(ctx, h.id)
		var ce *client.Error
		switch {
		case err == nil:
			h.pid = h.a.daemonPID()
			return lease, c, ""
		case errors.As(err, &ce):
			return nil, nil, fmt.Sprintf("the daemon that came back refused session %s: %s", h.id, ce.Message)
		}
	}
	return nil, nil, ""
}

// stopAgent records why and closes stop, once.
func (h *runHold) stopAgent(why string) { h.stopAgentNow(why, false) }

// stopAgentNow is stopAgent, with SIGKILL rather than SIGTERM first when
// hard.
func (h *runHold) stopAgentNow(why string, hard bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.why == "" {
		h.why, h.hard = why, hard
		close(h.stop)
	}
}

// stopHard reports whether the agent must stop at once.
func (h *runHold) stopHard() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hard
}

// daemonPID is the pid the daemon's state file names, 0 when none.
func (a *app) daemonPID() int {
	paths, err := a.needPaths()
	if err != nil {
		return 0
	}
	st, ok := client.ReadState(paths.StateFile())
	if !ok {
		return 0
	}
	return st.PID
}

// restartGrace is this user's sessions.restart_grace.
func (a *app) restartGrace() time.Duration {
	cfg, err := a.loadConfig()
	if err != nil || cfg == nil {
		d, _ := time.ParseDuration(config.DefaultRestartGrace)
		return d
	}
	return cfg.RestartGrace()
}
