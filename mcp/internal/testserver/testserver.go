// Package testserver is an upstream MCP server for Ringlet's tests: an
// mcp-go stdio server whose tools and failures the tests drive. It runs
// as the mcp package's test binary re-executed, and as the mcptestserver
// command for the gateway and end-to-end tests.
package testserver

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Run is an mcp-go stdio server with tools the tests drive:
//
//	echo        answers with its raw arguments
//	slow        sleeps for its "ms" argument, then answers
//	crash       exits the process with status 3 and "boom" on stderr
//	hang        hangs the whole server: it never answers, and reads and
//	            answers nothing more
//	set_desc    changes echo's description (and says tools/list_changed)
//	probe       reads the file "read" and/or connects to "connect" (host:port),
//	            answering what it could: for the sandbox tests
//	getenv      answers with its variable "name", as text, base64, hex,
//	            a JSON-RPC error, or on stderr as it exits ("as")
//	progress    sends "steps" notifications/progress for the call's
//	            progress token (if it has one), then answers with the token
//	            (after "ms" milliseconds, if given)
//
// -record appends every line the server receives to a file; -env writes
// its environment and -pid its process id to a file; -bad-tool adds a tool
// whose name breaks MCP's rules; -desc is echo's first description; -die
// exits at once; -die-once FILE exits at once unless FILE is there, and
// creates it (so only its first start fails); -hang never answers; -resources N adds N resources, a
// template and a prompt (see addResources); -page N answers lists N
// items a page; -no-tools serves the -resources alone, no tool, and a
// prompt add_tool that adds the tool late
// and a prompt crash that exits.
func Run(args []string) int {
	fs := flag.NewFlagSet("mcp-test-server", flag.ContinueOnError)
	record := fs.String("record", "", "")
	envFile := fs.String("env", "", "")
	badTool := fs.Bool("bad-tool", false, "")
	desc := fs.String("desc", "Echo the arguments back.", "")
	die := fs.Bool("die", false, "")
	dieOnce := fs.String("die-once", "", "")
	hang := fs.Bool("hang", false, "")
	pidFile := fs.String("pid", "", "")
	resources := fs.Int("resources", 0, "")
	page := fs.Int("page", 0, "")
	noTools := fs.Bool("no-tools", false, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *envFile != "" {
		if err := os.WriteFile(*envFile, []byte(strings.Join(os.Environ(), "\n")), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if *pidFile != "" {
		if err := os.WriteFile(*pidFile, []byte(strconv.Itoa(hostPID())), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if *die {
		fmt.Fprintln(os.Stderr, "cannot start: no config")
		return 1
	}
	if *dieOnce != "" {
		if f, err := os.OpenFile(*dieOnce, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
			f.Close()
			fmt.Fprintln(os.Stderr, "cannot start: first start")
			return 1
		}
	}
	if *hang {
		time.Sleep(time.Hour)
	}
	var opts []server.ServerOption
	if *resources > 0 {
		opts = append(opts, server.WithResourceCapabilities(true, true), server.WithPromptCapabilities(true), server.WithCompletions(),
			server.WithPromptCompletionProvider(completions{}), server.WithResourceCompletionProvider(completions{}))
	}
	if *page > 0 {
		opts = append(opts, server.WithPaginationLimit(*page))
	}
	if *noTools {
		s := server.NewMCPServer("test-upstream", "1.0.0", append([]server.ServerOption{server.WithToolCapabilities(true)}, opts...)...)
		addResources(s, *resources, false)
		if err := server.NewStdioServer(s).Listen(context.Background(), os.Stdin, os.Stdout); err != nil && err != io.EOF && err != context.Canceled {
			fmt.Fprintln(os.Stderr, err)
		}
		return 0
	}
	s := New(*desc, opts...)
	if *resources > 0 {
		addResources(s, *resources, true)
	}
	s.AddTool(mcpgo.NewTool("crash"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		fmt.Fprintln(os.Stderr, "boom")
		os.Exit(3)
		return nil, nil
	})
	// A stopped process (SIGSTOP) would do, but the kernel continues a
	// stopped process group that it finds orphaned, which a Go parent's
	// threads coming and going can make it.
	hung := make(chan struct{})
	hangOnce := sync.OnceFunc(func() { close(hung) })
	s.AddTool(mcpgo.NewTool("hang"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		hangOnce()
		forever()
		return nil, nil
	})
	if *badTool {
		s.AddTool(mcpgo.NewTool("bad name!"), echo)
	}
	var in io.Reader = hangingReader{os.Stdin, hung}
	if *record != "" {
		f, err := os.OpenFile(*record, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return 1
		}
		defer f.Close()
		in = io.TeeReader(os.Stdin, f)
	}
	if err := server.NewStdioServer(s).Listen(context.Background(), in, os.Stdout); err != nil && err != io.EOF && err != context.Canceled {
		fmt.Fprintln(os.Stderr, err)
	}
	return 0
}

// hangingReader reads nothing more once hung is closed.
type hangingReader struct {
	r    io.Reader
	hung chan struct{}
}

func (h hangingReader) Read(p []byte) (int, error) {
	select {
	case <-h.hung:
		forever()
	default:
	}
	n, err := h.r.Read(p)
	select {
	case <-h.hung:
		forever()
	default:
	}
	return n, err
}

// forever blocks the goroutine for good (sleeping, so that the runtime
// never takes the hung process for deadlocked and ends it).
func forever() {
	for {
		time.Sleep(time.Hour)
	}
}

func echo(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	return mcpgo.NewToolResultText(string(req.Params.RawArguments)), nil
}

// New is the server with the tools echo (described by desc), slow and
// set_desc, for any transport.
func New(desc string, opts ...server.ServerOption) *server.MCPServer {
	s := server.NewMCPServer("test-upstream", "1.0.0", append([]server.ServerOption{server.WithToolCapabilities(true)}, opts...)...)
	echoTool := func(d string) mcpgo.Tool {
		return mcpgo.NewTool("echo", mcpgo.WithDescription(d), mcpgo.WithString("text", mcpgo.Description("What to echo.")))
	}
	s.AddTool(echoTool(desc), echo)
	s.AddTool(mcpgo.NewTool("slow", mcpgo.WithNumber("ms")), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		select {
		case <-time.After(time.Duration(req.GetFloat("ms", 0)) * time.Millisecond):
		case <-ctx.Done():
		}
		return mcpgo.NewToolResultText("slept"), nil
	})
	s.AddTool(mcpgo.NewTool("probe", mcpgo.WithString("read"), mcpgo.WithString("write"), mcpgo.WithString("connect")), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		var out []string
		if p := req.GetString("read", ""); p != "" {
			if data, err := os.ReadFile(p); err != nil {
				out = append(out, "read failed")
			} else {
				out = append(out, "read: "+string(data))
			}
		}
		if p := req.GetString("write", ""); p != "" {
			if err := os.WriteFile(p, []byte("written by the server"), 0o644); err != nil {
				out = append(out, "write failed")
			} else {
				out = append(out, "wrote")
			}
		}
		if a := req.GetString("connect", ""); a != "" {
			if c, err := net.DialTimeout("tcp", a, 2*time.Second); err != nil {
				out = append(out, "connect failed")
			} else {
				c.Close()
				out = append(out, "connected")
			}
		}
		return mcpgo.NewToolResultText(strings.Join(out, "\n")), nil
	})
	s.AddTool(mcpgo.NewTool("progress", mcpgo.WithNumber("steps"), mcpgo.WithNumber("ms")), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		var tok any
		if req.Params.Meta != nil {
			tok = req.Params.Meta.ProgressToken
		}
		steps := int(req.GetFloat("steps", 3))
		for i := 1; tok != nil && i <= steps; i++ {
			s.SendNotificationToClient(ctx, "notifications/progress", map[string]any{
				"progressToken": tok, "progress": i, "total": steps, "message": fmt.Sprintf("step %d", i)})
		}
		if tok != nil {
			// mcp-go's stdio server writes notifications from a goroutine
			// of its own, so the answer could overtake them; a pause lets
			// them out first, as from a server that writes in order.
			time.Sleep(100 * time.Millisecond)
		}
		// A long call that reported its progress.
		select {
		case <-time.After(time.Duration(req.GetFloat("ms", 0)) * time.Millisecond):
		case <-ctx.Done():
		}
		return mcpgo.NewToolResultText(fmt.Sprint(tok)), nil
	})
	// getenv answers with a variable of its environment, "as" text (the
	// default), base64, hex or a JSON-RPC error, or "crash" writes it to
	// stderr and exits: the ways a server can echo a secret it was given.
	s.AddTool(mcpgo.NewTool("getenv", mcpgo.WithString("name"), mcpgo.WithString("as")), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		v, ok := os.LookupEnv(req.GetString("name", ""))
		if !ok {
			return mcpgo.NewToolResultText("unset"), nil
		}
		switch req.GetString("as", "text") {
		case "base64":
			v = base64.StdEncoding.EncodeToString([]byte("value=" + v))
		case "hex":
			v = hex.EncodeToString([]byte(v))
		case "error":
			return nil, fmt.Errorf("refused with %s", v)
		case "crash":
			fmt.Fprintln(os.Stderr, "dying with "+v)
			os.Exit(3)
		}
		return mcpgo.NewToolResultText("value: " + v), nil
	})
	s.AddTool(mcpgo.NewTool("set_desc", mcpgo.WithString("desc")), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		s.AddTool(echoTool(req.GetString("desc", "")), echo)
		return mcpgo.NewToolResultText("ok"), nil
	})
	return s
}

// hostPID is this process's pid as the host sees it: a server run without
// a sandbox may be the first process of a PID namespace of its own, where
// os.Getpid says 1, while /proc is still the host's.
func hostPID() int {
	if self, err := os.Readlink("/proc/self"); err == nil {
		if pid, err := strconv.Atoi(self); err == nil {
			return pid
		}
	}
	return os.Getpid()
}
