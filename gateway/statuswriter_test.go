package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5/middleware"
)

// statusWriter and chi's WrapResponseWriter report the same status and
// send the client the same answer, whatever the handler does.
func TestStatusWriterMatchesChi(t *testing.T) {
	tests := []struct {
		name string
		h    func(w http.ResponseWriter)
	}{
		{"write only", func(w http.ResponseWriter) { io.WriteString(w, "hi") }},
		{"nothing", func(w http.ResponseWriter) {}},
		{"status then body", func(w http.ResponseWriter) { w.WriteHeader(201); io.WriteString(w, "x") }},
		{"second status dropped", func(w http.ResponseWriter) { w.WriteHeader(404); w.WriteHeader(500) }},
		{"informational first", func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(202) }},
		{"flush first", func(w http.ResponseWriter) { w.(http.Flusher).Flush(); w.WriteHeader(500) }},
		{"read from", func(w http.ResponseWriter) { w.(io.ReaderFrom).ReadFrom(strings.NewReader("body")) }},
		{"controller flush", func(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type result struct {
				status, sent int
				body         string
			}
			run := func(wrap func(http.ResponseWriter, int) statusRecorder) result {
				var status int
				ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ww := wrap(w, r.ProtoMajor)
					tt.h(ww)
					status = ww.Status()
				}))
				defer ts.Close()
				resp, err := ts.Client().Get(ts.URL)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return result{status, resp.StatusCode, string(body)}
			}
			got := run(recordStatus)
			if _, ok := recordStatusOf(t); !ok {
				t.Fatal("recordStatus on net/http's writer: got chi's writer, want a statusWriter")
			}
			want := run(func(w http.ResponseWriter, p int) statusRecorder { return middleware.NewWrapResponseWriter(w, p) })
			if got != want {
				t.Errorf("got %+v, want chi's %+v", got, want)
			}
		})
	}
}

// recordStatusOf reports whether recordStatus gives net/http's HTTP/1
// writer a statusWriter.
func recordStatusOf(t *testing.T) (statusRecorder, bool) {
	t.Helper()
	var ww statusRecorder
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ww = recordStatus(w, r.ProtoMajor) }))
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, ok := ww.(*statusWriter)
	return ww, ok
}

type fancyRecorder struct{ *httptest.ResponseRecorder }

func (fancyRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) { return nil, nil, nil }
func (fancyRecorder) ReadFrom(io.Reader) (int64, error)            { return 0, nil }

// The metrics middleware's writer is one allocation, not chi's two; and
// it keeps the Flusher, Hijacker and ReaderFrom of what it wraps.
func TestStatusWriterAllocations(t *testing.T) {
	w := fancyRecorder{httptest.NewRecorder()}
	var sink statusRecorder
	got := testing.AllocsPerRun(100, func() { sink = recordStatus(w, 1) })
	chi := testing.AllocsPerRun(100, func() { sink = middleware.NewWrapResponseWriter(w, 1) })
	if got != 1 || got >= chi {
		t.Errorf("recordStatus: got %v allocations, want 1 (chi's: %v)", got, chi)
	}
	ww := recordStatus(w, 1)
	_, fl := ww.(http.Flusher)
	_, hj := ww.(http.Hijacker)
	_, rf := ww.(io.ReaderFrom)
	if !fl || !hj || !rf {
		t.Errorf("statusWriter: Flusher %v, Hijacker %v, ReaderFrom %v; want all", fl, hj, rf)
	}
	if _, ok := recordStatus(httptest.NewRecorder(), 1).(*statusWriter); ok {
		t.Error("recordStatus of a writer that cannot hijack: got a statusWriter, want chi's")
	}
	_ = sink
}
