package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/config"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/token"
)

// daemonURL is where the CLI looks for the daemon: RINGLET_URL, else the
// address the running daemon recorded, else daemon.listen.
func (a *app) daemonURL(paths config.Paths) (string, error) {
	if u := a.getenv("RINGLET_URL"); u != "" {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return "", fmt.Errorf("RINGLET_URL=%q is not a URL; want e.g. http://127.0.0.1:8765", u)
		}
		return u, nil
	}
	if st, ok := client.ReadState(paths.StateFile()); ok && client.ProcessAlive(st.PID) && st.URL != "" {
		return st.URL, nil
	}
	cfg, err := config.Load(paths.ConfigFile())
	if err != nil {
		return "", err
	}
	l, err := config.ParseListen(cfg.Listen(), false)
	if err != nil {
		return "", err
	}
	return "http://" + l.Addr(), nil
}

// daemonClient returns a client for the daemon without starting it. A
// missing token file is reported as not running when no daemon runs.
func (a *app) daemonClient() (*client.Client, error) {
	paths, err := a.needPaths()
	if err != nil {
		return nil, err
	}
	url, err := a.daemonURL(paths)
	if err != nil {
		return nil, err
	}
	if t := a.getenv("RINGLET_TOKEN"); t != "" {
		return client.New(url, token.FromString(t)), nil
	}
	tok, err := token.Load(paths.TokenFile())
	if errors.Is(err, fs.ErrNotExist) {
		if st, ok := client.ReadState(paths.StateFile()); ok && client.ProcessAlive(st.PID) {
			return nil, fmt.Errorf("the token file %s is missing while a daemon runs (pid %d); stop that daemon with 'kill %d' and start it again to create a new token", paths.TokenFile(), st.PID, st.PID)
		}
		return nil, fmt.Errorf("%w (no token file at %s)", client.ErrNotRunning, paths.TokenFile())
	}
	if err != nil {
		return nil, err
	}
	return client.New(url, tok), nil
}

// ensureDaemon returns a client for a daemon that answers, starting one in
// the background when none runs (unless RINGLET_URL names a daemon, which
// the user manages). The first start of an invocation says so on stderr.
func (a *app) ensureDaemon(ctx context.Context) (*client.Client, error) {
	c, err := a.daemonClient()
	if err == nil {
		err = c.Do(ctx, "GET", "/api/version", nil, nil)
		if err == nil {
			return c, nil
		}
	}
	if !errors.Is(err, client.ErrNotRunning) || a.getenv("RINGLET_URL") != "" {
		return nil, err
	}
	if sess, ok := a.agentSessionFromEnv(); ok {
		// An agent's command (inside a sandbox there is no token file,
		// so every admin command lands here) must not start a daemon of
		// its own in the agent's HOME.
		return nil, fmt.Errorf("%w; this environment belongs to a Ringlet session (%s), and a session's commands never start a daemon or use the admin token: run admin commands from your own shell (or unset %s)",
			err, strings.Join(sess.Shown, ", "), strings.Join(sess.Shown, " "))
	}
	st, err := a.startBackground(ctx, false, nil)
	if err != nil {
		return nil, err
	}
	if !a.notified {
		a.notified = true
		paths, _ := a.needPaths()
		cfg, _ := a.loadConfig()
		idle := "it stays up"
		if cfg != nil && cfg.IdleTimeout() > 0 {
			idle = "it exits after " + cfg.IdleTimeout().String() + " idle"
		}
		fmt.Fprintf(a.stdio.Err, "ringlet: started the daemon in the background (pid %d, %s); %s; log: %s\n", st.PID, st.URL, idle, paths.LogFile())
	}
	return a.daemonClient()
}

// callDaemon runs call against the running daemon at once, without the
// probe ensureDaemon sends first: one round trip instead of two, for
// commands whose latency matters ('sessions kill'). Only when nothing
// answers (the request never reached a daemon) is one started, as
// ensureDaemon does, and call run again.
func (a *app) callDaemon(ctx context.Context, call func(*client.Client) error) error {
	c, err := a.daemonClient()
	if err == nil {
		if err = call(c); !errors.Is(err, client.ErrNotRunning) {
			return err
		}
	}
	if !errors.Is(err, client.ErrNotRunning) {
		return err
	}
	if c, err = a.ensureDaemon(ctx); err != nil {
		return err
	}
	return call(c)
}

// startBackground starts `ringlet daemon --detached` in a new session and
// waits until it reports ready (or why it could not start) on a pipe.
func (a *app) startBackground(ctx context.Context, stayAlive bool, extra []string) (api.DaemonState, error) {
	paths, err := a.needPaths()
	if err != nil {
		return api.DaemonState{}, err
	}
	exe, err := os.Executable()
	if err != nil {
		return api.DaemonState{}, fmt.Errorf("find the ringlet binary to start the daemon: %w", err)
	}
	args := []string{"daemon", "--detached"}
	if stayAlive {
		args = append(args, "--stay-alive")
	}
	args = append(args, extra...)
	r, w, err := os.Pipe()
	if err != nil {
		return api.DaemonState{}, err
	}
	defer r.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		return api.DaemonState{}, err
	}
	defer null.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = daemonEnv(a.environ())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{w} // becomes readyFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return api.DaemonState{}, fmt.Errorf("start the daemon: %w", err)
	}
	w.Close()
	pid := cmd.Process.Pid
	// The daemon runs on in its own session and outlives this process,
	// which is why it is released rather than waited for.
	defer func() { _ = cmd.Process.Release() }()

	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(15 * time.Second):
		r.Close()
		return api.DaemonState{}, fmt.Errorf("the daemon (pid %d) did not become ready within 15s; see %s", pid, paths.LogFile())
	case <-ctx.Done():
		return api.DaemonState{}, ctx.Err()
	}
	switch {
	case strings.HasPrefix(line, "ready "):
		return api.DaemonState{PID: pid, URL: strings.TrimPrefix(line, "ready ")}, nil
	case strings.HasPrefix(line, "error "):
		return api.DaemonState{}, errors.New(strings.TrimPrefix(line, "error "))
	default:
		return api.DaemonState{}, fmt.Errorf("the daemon exited before it was ready; see %s", paths.LogFile())
	}
}

// daemonEnv is the environment of a daemon the CLI starts: the user's,
// without the variables that point the CLI at a daemon or carry a token
// (a session's, when a shell where 'profiles env' ran starts it).
func daemonEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "RINGLET_TOKEN", "RINGLET_URL", profile.EnvSession, profile.EnvSessionToken, profile.EnvSessionURL:
			continue
		}
		out = append(out, kv)
	}
	return out
}
