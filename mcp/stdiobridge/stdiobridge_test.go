package stdiobridge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100)
	r := bufio.NewReaderSize(strings.NewReader("short\n"+long+"\nafter\nlast"), 16)
	for _, want := range []struct {
		line string
		err  error
	}{{"short", nil}, {"", errLineTooLong}, {"after", nil}, {"last", nil}} {
		line, err := readLine(r, 50)
		if string(line) != want.line || (want.err != nil && !errors.Is(err, want.err)) {
			t.Errorf("got %q %v, want %q %v", line, err, want.line, want.err)
		}
	}
}

// TestEveryRequestIsAnswered: whatever the daemon's answer to a POST
// holds, a request gets a response on stdout; an answer without one (an
// empty 200, a body cut short, a stream that ends before the response)
// is told to the client as an error, never dropped, or the client would
// wait for it forever.
func TestEveryRequestIsAnswered(t *testing.T) {
	t.Parallel()
	const resp = `{"jsonrpc":"2.0","id":7,"result":{}}`
	const note = `{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter)
		want   string // the response's result, or "" for an error
	}{
		{"a JSON response", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, resp)
		}, "{}"},
		{"a stream with a notification and the response", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: message\ndata: "+note+"\n\nevent: message\ndata: "+resp+"\n\n")
		}, "{}"},
		// What the daemon sends when its MCP server wrote nothing.
		{"an empty 200", func(w http.ResponseWriter) { w.(http.Flusher).Flush() }, ""},
		{"a 202", func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) }, ""},
		{"a JSON body cut short", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, resp[:10])
		}, ""},
		{"a stream that ends with a notification", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: message\ndata: "+note+"\n\n")
		}, ""},
		{"a stream cut in the response", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.(http.Flusher).Flush()
			io.WriteString(w, "event: message\ndata: "+resp[:10])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // as a proxy does when its upstream fails
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost {
					w.WriteHeader(http.StatusMethodNotAllowed)
					return
				}
				tc.answer(w)
			}))
			defer ts.Close()
			var out bytes.Buffer
			b := &Bridge{URL: ts.URL, Token: "t", In: strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}}` + "\n"), Out: &out}
			// Run returns once In ended and what was in flight is done.
			if err := b.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			var got *struct {
				Result json.RawMessage `json:"result"`
				Error  *struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				var m struct {
					ID json.RawMessage `json:"id"`
				}
				if json.Unmarshal([]byte(line), &m) == nil && string(m.ID) == "7" {
					if got != nil {
						t.Fatalf("two answers to 7: %s", out.String())
					}
					if err := json.Unmarshal([]byte(line), &got); err != nil {
						t.Fatal(err)
					}
				}
			}
			switch {
			case got == nil:
				t.Fatalf("no answer to 7 on stdout (a client would wait forever); stdout %q", out.String())
			case tc.want != "" && string(got.Result) != tc.want:
				t.Errorf("got %s %+v, want the result %s", got.Result, got.Error, tc.want)
			case tc.want == "" && (got.Error == nil || !strings.Contains(got.Error.Message, "did not answer")):
				t.Errorf("got %s %+v, want an error saying the daemon did not answer", got.Result, got.Error)
			}
		})
	}
}
