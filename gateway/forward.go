package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/neullabs/ringlet/privatefile"
	"github.com/neullabs/ringlet/sandbox"
)

// sessionSocket serves one session's scope on a Unix socket that is bound
// into that session's sandbox: the routes of the table served onSocket
// (the provider proxy, its MCP gateway, hook checks and egress), with
// that session's token only. The admin API is not there at all.
type sessionSocket struct {
	dir  string
	path string
	srv  *http.Server
	done chan struct{}
}

// openSocket listens on a new socket in a fresh 0700 directory.
// The directory is short-named under the temp dir: a Unix socket path is
// limited to 108 bytes.
func (ss *sessions) openSocket(sess *session) (string, error) {
	base := ss.o.SocketDir
	if base == "" {
		base = os.TempDir()
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	dir := filepath.Join(base, "ringlet-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(dir, privatefile.DirMode); err != nil {
		return "", err
	}
	path, err := ss.serveSocket(sess, dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return path, nil
}

// adoptSocket serves a restored session's socket again in the directory
// its sandbox has bound (sandbox.InsideSocketDir), which a previous daemon
// made and left at a graceful stop. Only a directory this daemon would
// have made is taken: right under its socket root, of Ringlet's name, a
// real directory (not a symbolic link) of this user's with mode 0700. The
// sandbox binds it read-only, so nothing in it is the agent's; whatever is
// at the socket's name (the old socket) is replaced.
func (ss *sessions) adoptSocket(sess *session, dir string) error {
	if ss.o.SocketDir == "" || filepath.Dir(dir) != ss.o.SocketDir || !socketDirName().MatchString(filepath.Base(dir)) {
		return errors.New("not a session socket directory of this daemon's")
	}
	if err := privateDir(dir); err != nil {
		return err
	}
	path := filepath.Join(dir, sandbox.SocketFile)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	_, err := ss.serveSocket(sess, dir)
	return err
}

// socketDirName is the name of a session's socket directory.
var socketDirName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^ringlet-[0-9a-f]{12}$`) })

// privateDir checks that dir is a directory (not a symbolic link) of this
// user's that no one else may enter.
func privateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0 || fi.Mode().Perm() != privatefile.DirMode || !ok || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is not a private directory of this user's", dir)
	}
	return nil
}

// serveSocket listens on the session's socket in dir and serves it.
func (ss *sessions) serveSocket(sess *session, dir string) (string, error) {
	path := filepath.Join(dir, sandbox.SocketFile)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(path, privatefile.FileMode); err != nil {
		ln.Close()
		return "", err
	}
	handler := ss.o.Socket(sess)
	var conns sync.Map // net.Conn -> *afterAnswer
	sk := &sessionSocket{dir: dir, path: path, done: make(chan struct{}),
		srv: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			BaseContext: func(net.Listener) context.Context {
				return context.WithValue(sess.ctx, sourceKey{}, "session socket "+sess.ID)
			},
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				ss.learnTree(sess, c)
				a := &afterAnswer{}
				conns.Store(c, a)
				return context.WithValue(ctx, afterAnswerKey{}, a)
			},
			// An answer is written to its end once its connection is
			// idle (or gone): what waited for it runs then.
			ConnState: func(c net.Conn, st http.ConnState) {
				if st != http.StateIdle && st != http.StateClosed && st != http.StateHijacked {
					return
				}
				if a, ok := conns.Load(c); ok {
					a.(*afterAnswer).run()
				}
				if st != http.StateIdle {
					conns.Delete(c)
				}
			}}}
	ss.sockMu.Lock()
	ss.sockets[sess.ID] = sk
	ss.sockMu.Unlock()
	ss.o.Life.streams.Add(1)
	go func() {
		defer ss.o.Life.streams.Done()
		defer close(sk.done)
		if err := sk.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			ss.o.Log.Error("session socket stopped", "session", sess.ID, "err", err)
		}
	}()
	ss.o.Log.Info("session socket open", "session", sess.ID, "socket", path)
	return path, nil
}

// socketDir is the directory of the session's socket, "" when it has none.
func (ss *sessions) socketDir(sess *session) string {
	ss.sockMu.Lock()
	defer ss.sockMu.Unlock()
	if sk := ss.sockets[sess.ID]; sk != nil {
		return sk.dir
	}
	return ""
}

// socketDirs are the directories of the sockets served.
func (ss *sessions) socketDirs() []string {
	ss.sockMu.Lock()
	defer ss.sockMu.Unlock()
	out := make([]string, 0, len(ss.sockets))
	for _, sk := range ss.sockets {
		out = append(out, sk.dir)
	}
	return out
}

// closeSocket stops serving the session's socket and removes its
// directory, unless keepDir: a session kept for the next daemon keeps the
// directory its sandbox has bound (adoptSocket).
func (ss *sessions) closeSocket(sess *session, keepDir bool) {
	ss.sockMu.Lock()
	sk := ss.sockets[sess.ID]
	delete(ss.sockets, sess.ID)
	ss.sockMu.Unlock()
	if sk == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if sess.wasKilled() {
		// Not one more byte: every connection closes now.
		sk.srv.Close()
	} else if err := sk.srv.Shutdown(ctx); err != nil {
		sk.srv.Close()
	}
	<-sk.done
	if keepDir {
		// The listener removed its socket file as it closed.
		return
	}
	os.RemoveAll(sk.dir)
}

// learnTree notes the sandbox of the first process that connects to the
// session's socket from a PID namespace of its own: the forwarder, which
// connects once before it starts the agent. The kernel names that
// process, so neither the launcher nor the agent can name another.
func (ss *sessions) learnTree(sess *session, c net.Conn) {
	if sess.tree.Load() != nil {
		return
	}
	t, err := sandbox.PeerTree(c)
	if err != nil {
		ss.o.Log.Warn("could not find the sandbox of a session socket's peer; the kill switch may leave its agent to its launcher", "session", sess.ID, "err", err)
		return
	}
	if t == nil {
		return
	}
	// Whoever ends the session takes it once the socket's accept loop
	// has stopped (closeSocket waits for it), so it is never left behind.
	if !sess.tree.CompareAndSwap(nil, t) {
		t.Close()
	}
}

// afterAnswer holds what waits, on one connection of a session's socket,
// for the answer being written on it to reach its end: the kills its
// request's budget asked for (killsAfter.answerThenRun), which close the
// connection. They run when net/http is done with the answer: the
// connection idle, closed or hijacked.
type afterAnswer struct {
	mu  sync.Mutex
	fns []func()
}

type afterAnswerKey struct{}

// later keeps fn until the answer is written.
func (a *afterAnswer) later(fn func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fns = append(a.fns, fn)
}

// run runs what waited, once.
func (a *afterAnswer) run() {
	a.mu.Lock()
	fns := a.fns
	a.fns = nil
	a.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}
