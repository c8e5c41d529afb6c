package benchnet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// Floor is the durable-record floor: a bare ReverseProxy (as Bare) that
// also commits one SQLite row per request before answering. It is what
// any proxy that keeps an audit trail written before the client has the
// answer must at least spend: ncruces/go-sqlite3 as Ringlet uses it, WAL,
// synchronous=NORMAL, and one serialised transaction per request,
// committed once the upstream's answer has come and before its first
// byte goes to the client.
type Floor struct {
	rp  *httputil.ReverseProxy
	mu  sync.Mutex
	db  *sqlite3.Conn
	ins *sqlite3.Stmt
	// BEGIN and COMMIT are prepared once, as Ringlet's audit log does.
	begin, commit *sqlite3.Stmt
	// before commits a row before forwarding too (NewMCPFloor).
	before bool
}

// NewMCPFloor is the durable-record floor of an MCP gateway: Floor that
// also commits a row before forwarding each request, as Ringlet commits a
// tools/call's tool.call record before the call goes upstream and its
// tool.result record before the answer goes back. A request whose first
// row cannot be committed is not forwarded (502).
func NewMCPFloor(upstream *url.URL, dbPath string) (*Floor, error) {
	f, err := NewFloor(upstream, dbPath)
	if err == nil {
		f.before = true
	}
	return f, err
}

// NewFloor opens (creating) the SQLite database at dbPath and returns the
// floor proxy to upstream. Close closes the database.
func NewFloor(upstream *url.URL, dbPath string) (*Floor, error) {
	db, err := sqlite3.Open(dbPath)
	if err != nil {
		return nil, fmt.Errorf("open floor db: %w", err)
	}
	f := &Floor{db: db}
	err = db.Exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
		CREATE TABLE IF NOT EXISTS requests (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, method TEXT NOT NULL,
			path TEXT NOT NULL, status INTEGER NOT NULL, bytes_in INTEGER NOT NULL, duration INTEGER NOT NULL)`)
	for _, p := range []struct {
		s   **sqlite3.Stmt
		sql string
	}{{&f.ins, "INSERT INTO requests (time, method, path, status, bytes_in, duration) VALUES (?, ?, ?, ?, ?, ?)"},
		{&f.begin, "BEGIN IMMEDIATE"}, {&f.commit, "COMMIT"}} {
		if err == nil {
			*p.s, _, err = db.Prepare(p.sql)
		}
	}
	if err != nil {
		_ = f.Close() // the set-up error is the one to report
		return nil, fmt.Errorf("set up floor db: %w", err)
	}
	bare := Bare(upstream).(*httputil.ReverseProxy)
	bare.ModifyResponse = f.record
	f.rp = bare
	return f, nil
}

type floorStart struct{}

func (f *Floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if f.before {
		if err := f.commitRow(r, 0, 0); err != nil {
			http.Error(w, "record not written", http.StatusBadGateway)
			return
		}
	}
	f.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), floorStart{}, start)))
}

// record commits the request's row; an answer whose row cannot be
// committed is not passed on (ReverseProxy answers 502).
func (f *Floor) record(resp *http.Response) error {
	start, _ := resp.Request.Context().Value(floorStart{}).(time.Time)
	return f.commitRow(resp.Request, resp.StatusCode, time.Since(start))
}

// commitRow commits one row about r in a transaction of its own.
func (f *Floor) commitRow(r *http.Request, status int, took time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.exec(f.begin); err != nil {
		return err
	}
	err := errors.Join(f.ins.BindInt64(1, time.Now().UnixNano()), f.ins.BindText(2, r.Method), f.ins.BindText(3, r.URL.Path),
		f.ins.BindInt64(4, int64(status)), f.ins.BindInt64(5, r.ContentLength), f.ins.BindInt64(6, int64(took)))
	if err == nil {
		err = f.exec(f.ins)
	}
	if err != nil {
		_ = f.db.Exec("ROLLBACK") // the insert's error is the one to report
		return err
	}
	return f.exec(f.commit)
}

func (f *Floor) exec(s *sqlite3.Stmt) error {
	err := s.Exec()
	if rerr := s.Reset(); err == nil {
		err = rerr
	}
	return err
}

// Close closes the database.
func (f *Floor) Close() error {
	for _, s := range []*sqlite3.Stmt{f.ins, f.begin, f.commit} {
		if s != nil {
			_ = s.Close() // closing the connection reports what matters
		}
	}
	return f.db.Close()
}
