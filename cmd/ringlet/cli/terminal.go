package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/neullabs/ringlet/api"
)

// detachKey (Ctrl-]) leaves an attached terminal without stopping it.
const detachKey = 0x1d

func (a *app) termSize() (cols, rows uint16) {
	if f, ok := a.stdio.Out.(*os.File); ok {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil {
			return uint16(w), uint16(h)
		}
	}
	return 80, 24
}

func (a *app) terminalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "terminal",
		Short: "List, inspect, attach to and kill agents running remotely (profiles run --remote)",
		Example: `  ringlet profiles run work --remote
  ringlet terminal list
  ringlet terminal attach s_1a2b3c4d5e6f7a8b     # Ctrl-] detaches
  ringlet terminal kill s_1a2b3c4d5e6f7a8b`,
	}
	var asJSON bool
	list := &cobra.Command{
		Use:     "list",
		Example: "  ringlet terminal list --json",
		Short:   "List remote terminals",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			terminals, err := c.Terminals(cmd.Context())
			if err != nil {
				return err
			}
			if done, err := listed(a.stdio.Out, asJSON, terminals, "no remote terminals"); done {
				return err
			}
			t := newTable(a.stdio.Out)
			t.row("SESSION", "PROFILE", "PID", "STATE", "VIEWERS", "STARTED")
			for _, ti := range terminals {
				state := "running"
				if !ti.Running {
					state = "exited " + strconv.Itoa(ti.ExitCode)
				}
				t.row(ti.Session, ti.Profile, strconv.Itoa(ti.PID), state, strconv.Itoa(ti.Viewers), ti.Started.Local().Format(time.DateTime))
			}
			return t.flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var infoJSON bool
	info := &cobra.Command{
		Use:     "info SESSION",
		Example: "  ringlet terminal info s_0123456789abcdef",
		Short:   "Show a remote terminal",
		Args:    exactArgs(1, "SESSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			ti, err := c.Terminal(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if infoJSON {
				return writeJSONOut(a.stdio.Out, ti)
			}
			t := newTable(a.stdio.Out)
			t.row("session", ti.Session)
			t.row("profile", ti.Profile)
			t.row("pid", strconv.Itoa(ti.PID))
			t.row("running", strconv.FormatBool(ti.Running))
			if !ti.Running {
				t.row("exit code", strconv.Itoa(ti.ExitCode))
			}
			t.row("viewers", strconv.Itoa(ti.Viewers))
			t.row("started", ti.Started.Format(time.RFC3339))
			return t.flush()
		},
	}
	info.Flags().BoolVar(&infoJSON, "json", false, "print JSON")
	kill := &cobra.Command{
		Use:     "kill SESSION",
		Example: "  ringlet terminal kill s_0123456789abcdef",
		Short:   "Kill the agent's whole process group and end its session",
		Args:    exactArgs(1, "SESSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			ti, err := c.KillTerminal(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdio.Out, "killed the agent of session %s (exit %d)\n", ti.Session, ti.ExitCode)
			return nil
		},
	}
	attach := &cobra.Command{
		Use:     "attach SESSION",
		Example: "  ringlet terminal attach s_0123456789abcdef",
		Short:   "Attach this terminal to a remote agent (Ctrl-] detaches)",
		Long: `Attach to a remote agent: the scrollback is shown first, then the live
terminal; keystrokes go to the agent, window size changes follow. Ctrl-]
detaches and leaves the agent running. Several viewers may attach. When
the agent exits, attach exits with the agent's exit code.`,
		Args: exactArgs(1, "SESSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.attach(cmd.Context(), args[0])
		},
	}
	cmd.AddCommand(list, info, attach, kill)
	return cmd
}

func (a *app) attach(ctx context.Context, id string) error {
	c, err := a.ensureDaemon(ctx)
	if err != nil {
		return err
	}
	conn, resp, err := c.AttachTerminal(ctx, id)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("no remote terminal for session %s ('ringlet terminal list' shows them)", id)
		}
		return fmt.Errorf("attach to %s: %w", id, err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(4 << 20)

	in, isFile := a.stdio.In.(*os.File)
	if isFile && term.IsTerminal(int(in.Fd())) {
		old, err := term.MakeRaw(int(in.Fd()))
		if err == nil {
			defer func() { _ = term.Restore(int(in.Fd()), old) }()
		}
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sendSize := func() {
		cols, rows := a.termSize()
		b, _ := json.Marshal(api.TerminalControl{Type: "resize", Cols: cols, Rows: rows})
		_ = conn.Write(ctx, websocket.MessageText, b) // a lost resize is redrawn by the next
	}
	sendSize()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)

	var wg sync.WaitGroup
	detached := make(chan struct{})
	wg.Go(func() {
		buf := make([]byte, 4096)
		for {
			n, err := a.stdio.In.Read(buf)
			if n > 0 {
				if i := indexByte(buf[:n], detachKey); i >= 0 {
					if i > 0 {
						_ = conn.Write(ctx, websocket.MessageBinary, buf[:i]) // detaching anyway
					}
					close(detached)
					cancel()
					return
				}
				if conn.Write(ctx, websocket.MessageBinary, buf[:n]) != nil {
					return
				}
			}
			if err != nil {
				// End of input (a pipe ran dry) detaches like Ctrl-].
				close(detached)
				cancel()
				return
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-winch:
				sendSize()
			case <-ctx.Done():
				return
			}
		}
	})
	var readErr error
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			readErr = err
			break
		}
		_, _ = a.stdio.Out.Write(data)
	}
	cancel()
	select {
	case <-detached:
		conn.Close(websocket.StatusNormalClosure, "detached")
		fmt.Fprintf(a.stdio.Err, "\r\nringlet: detached from %s; it keeps running\r\n", id)
		return nil
	default:
	}
	// The terminal ended the stream: the agent exited or we were dropped.
	var ce websocket.CloseError
	if errors.As(readErr, &ce) {
		fmt.Fprintf(a.stdio.Err, "\r\nringlet: %s\r\n", ce.Reason)
		if ce.Code == websocket.StatusNormalClosure {
			// The agent exited: end with its exit code, as 'profiles run'
			// does for an agent on this terminal.
			if ti, err := c.Terminal(parent, id); err == nil && !ti.Running && ti.ExitCode != 0 {
				return exitCode(ti.ExitCode)
			}
			return nil
		}
		return errors.New(ce.Reason)
	}
	return nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
