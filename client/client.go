// Package client is how the CLI talks to the daemon: JSON over HTTP with
// the bearer token, a typed call per route (the bodies are package api's),
// errors decoded from the daemon's error format, and where the running
// daemon says it is (daemon.json).
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/token"
)

// Client calls one daemon.
type Client struct {
	base string
	tok  token.Token
	hc   *http.Client
}

// New returns a client for the daemon at base (http://host:port).
func New(base string, tok token.Token) *Client {
	return &Client{
		base: strings.TrimRight(base, "/"),
		tok:  tok,
		hc: &http.Client{
			Timeout: 30 * time.Second,
			// The daemon never redirects; following one could send the
			// token elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// BaseURL is the daemon's address.
func (c *Client) BaseURL() string { return c.base }

// Token is the token the client authenticates with.
func (c *Client) Token() token.Token { return c.tok }

// Error is an error answered by the daemon.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// CodeUnknown is the Code of an error answer that is not in the daemon's
// error format (or has no message).
const CodeUnknown = "unknown"

// ErrNotRunning means nothing is listening at the daemon's address.
var ErrNotRunning = errors.New("the ringlet daemon is not running")

// ErrBadAnswer means a successful answer could not be decoded.
var ErrBadAnswer = errors.New("the daemon's answer could not be decoded")

// Do sends a request with in (if not nil) as its JSON body and decodes a
// successful JSON answer into out (if not nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	return c.do(ctx, c.hc, method, path, in, out)
}

func (c *Client) do(ctx context.Context, hc *http.Client, method, path string, in, out any) error {
	raw, err := c.raw(ctx, hc, method, path, in)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrBadAnswer, method, path, err)
	}
	return nil
}

// Raw sends a request and returns the body of a successful answer.
func (c *Client) Raw(ctx context.Context, method, path string, in any) ([]byte, error) {
	return c.raw(ctx, c.hc, method, path, in)
}

// patient is the client's HTTP client without its overall timeout, for a
// call that may take as long as its context allows.
func (c *Client) patient() *http.Client {
	return &http.Client{CheckRedirect: c.hc.CheckRedirect, Transport: c.hc.Transport}
}

func (c *Client) raw(ctx context.Context, hc *http.Client, method, path string, in any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		if b, ok := in.([]byte); ok {
			body = bytes.NewReader(b)
		} else {
			b, err := json.Marshal(in)
			if err != nil {
				return nil, err
			}
			body = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("invalid daemon address %q: %w", c.base, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.tok.Value())
	resp, err := hc.Do(req)
	if err != nil {
		if IsConnRefused(err) {
			return nil, fmt.Errorf("%w (nothing answers at %s)", ErrNotRunning, c.base)
		}
		return nil, fmt.Errorf("reach the daemon at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read daemon answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		return nil, answerError(resp, data)
	}
	return data, nil
}

// answerError is the daemon's JSON error answer as an *Error.
func answerError(resp *http.Response, data []byte) error {
	var e api.ErrorAnswer
	if json.Unmarshal(data, &e) != nil || e.Error.Message == "" {
		return &Error{Status: resp.StatusCode, Code: CodeUnknown, Message: fmt.Sprintf("daemon answered %s", resp.Status)}
	}
	return &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
}

// Hold sends a request whose answer the daemon keeps open (a session's
// lease) and returns once the daemon has accepted it. The request stays
// open until release is called, or the process exits: the kernel then
// closes the connection and the daemon sees it go. ended is closed when
// the daemon closes it first.
func (c *Client) Hold(ctx context.Context, method, path string) (release func(), ended <-chan struct{}, err error) {
	return c.hold(ctx, method, path, nil)
}

// hold is Hold, calling onLine (when not nil) with each line of the
// answer, in order, before ended is closed.
func (c *Client) hold(ctx context.Context, method, path string, onLine func([]byte)) (release func(), ended <-chan struct{}, err error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("invalid daemon address %q: %w", c.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.tok.Value())
	// No client timeout: the answer lasts as long as the hold.
	resp, err := c.patient().Do(req)
	if err != nil {
		cancel()
		if IsConnRefused(err) {
			return nil, nil, fmt.Errorf("%w (nothing answers at %s)", ErrNotRunning, c.base)
		}
		return nil, nil, fmt.Errorf("reach the daemon at %s: %w", c.base, err)
	}
	if resp.StatusCode >= 300 {
		defer cancel()
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, nil, answerError(resp, data)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if onLine == nil {
			_, _ = io.Copy(io.Discard, resp.Body) // drained for reuse of the connection only
			return
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			onLine(sc.Bytes())
		}
		// A line too long for the scanner: the rest is drained unread.
		_, _ = io.Copy(io.Discard, resp.Body)
	}()
	var once sync.Once
	release = func() {
		once.Do(func() {
			cancel()
			resp.Body.Close()
			<-done
		})
	}
	return release, done, nil
}

// IsConnRefused reports whether err means no process listens at the address.
func IsConnRefused(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && errors.Is(op.Err, syscall.ECONNREFUSED)
}
