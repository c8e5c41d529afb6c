package gateway

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/bench/benchnet"
)

// TestBoundedPoolKeepsNoLargeBuffer: a buffer over the pool's bound is
// dropped, not kept for the next body.
func TestBoundedPoolKeepsNoLargeBuffer(t *testing.T) {
	p := boundedPool{max: 1 << 10}
	p.put(bytes.NewBuffer(make([]byte, 0, 1<<20)))
	if got := p.get(); got.Cap() > 1<<10 {
		t.Errorf("got a pooled buffer of %d bytes, want none over %d", got.Cap(), 1<<10)
	}
	small := bytes.NewBufferString("left over")
	p.put(small)
	if got := p.get(); got.Len() != 0 {
		t.Errorf("got a pooled buffer holding %q, want it empty", got.String())
	}
}

// TestReadRequestBody: a body declared large is read with one buffer of
// its size; bodies of unknown or small length come whole too.
func TestReadRequestBody(t *testing.T) {
	t.Parallel()
	large := bytes.Repeat([]byte("x"), 1<<20)
	for _, tc := range []struct {
		name   string
		body   []byte
		length int64
	}{
		{"large, declared", large, int64(len(large))},
		{"large, unknown length", large, -1},
		{"small, declared", []byte(`{"model":"m"}`), 13},
		{"empty", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb, err := readRequestBody(bytes.NewReader(tc.body), tc.length)
			if err != nil {
				t.Fatal(err)
			}
			defer rb.free()
			if !bytes.Equal(rb.bytes(), tc.body) {
				t.Fatalf("got %d bytes, want the %d sent", len(rb.bytes()), len(tc.body))
			}
			if tc.length >= largeBody && rb.buf.Cap() != int(tc.length)+bytes.MinRead {
				t.Errorf("got a buffer of %d bytes, want %d (the declared length, read without growing)", rb.buf.Cap(), tc.length+bytes.MinRead)
			}
		})
	}
}

// TestBurstCollector: the collection is scheduled once the large bodies
// held are released, not while one is held, and not for small bodies.
func TestBurstCollector(t *testing.T) {
	t.Parallel()
	ran := make(chan struct{}, 4)
	c := &burstCollector{collect: func() { ran <- struct{}{} }, delay: time.Millisecond}
	var held atomic.Int64

	c.read(100)
	c.released(&held)
	if c.pending.Load() {
		t.Fatal("a small body's release scheduled a collection, want none")
	}
	held.Store(2 * largeBody)
	c.read(largeBody)
	c.released(&held)
	if c.pending.Load() {
		t.Fatal("a collection was scheduled while a large body is still held, want none")
	}
	held.Store(0)
	c.released(&held)
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("no collection 10s after the last large body was released")
	}
}

// TestProxyLargeBodyCollected: a 1 MiB body goes to the provider intact,
// and once it is released the daemon gives its memory back; a small body
// does not make it collect.
func TestProxyLargeBodyCollected(t *testing.T) {
	t.Parallel()
	var got atomic.Value
	upstream := benchnet.Upstream(0)
	bs := newBenchSetupWith(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		got.Store(sha256.Sum256(data))
		r2 := httptest.NewRequest(r.Method, r.URL.String(), bytes.NewReader(data))
		r2.Header = r.Header
		upstream.ServeHTTP(w, r2)
	}))
	ran := make(chan struct{}, 4)
	bs.srv.bodies.burst.collect = func() { ran <- struct{}{} }
	bs.srv.bodies.burst.delay = time.Millisecond

	small := bs.post(t, bs.ringlet, benchnet.Body)
	small.Body.Close()
	if small.StatusCode != http.StatusOK || bs.srv.bodies.burst.pending.Load() {
		t.Fatalf("small body: got %d, collection pending %v; want 200 and none", small.StatusCode, bs.srv.bodies.burst.pending.Load())
	}

	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":1,"messages":[{"role":"user","content":"` + strings.Repeat("y", 1<<20) + `"}]}`)
	resp := bs.post(t, bs.ringlet, body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("1 MiB body: got %d, want 200", resp.StatusCode)
	}
	if sum, _ := got.Load().([32]byte); sum != sha256.Sum256(body) {
		t.Fatal("the provider got a body other than the one sent")
	}
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("no collection 10s after a 1 MiB body was released")
	}
	// The same body of unknown length (chunked): counted once read.
	req, _ := http.NewRequest("POST", bs.ringlet+"/v1/messages", io.MultiReader(bytes.NewReader(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", bs.token)
	chunked, err := bs.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	chunked.Body.Close()
	if chunked.StatusCode != http.StatusOK || req.ContentLength != 0 {
		t.Fatalf("1 MiB body of unknown length: got %d (sent with length %d), want 200 and no length", chunked.StatusCode, req.ContentLength)
	}
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("no collection 10s after a 1 MiB body of unknown length was released")
	}
	if held := bs.srv.bodies.held.Load(); held != 0 {
		t.Errorf("got %d bytes of bodies held after the requests, want 0", held)
	}
}
