package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestSlowKillKeepsTheAnswerWhole: over TCP the kills a request queued
// run in its handler, after its answer is flushed and before net/http
// writes the answer's last chunk. A kill that takes longer than
// answerWait (a sandbox slow to die, several sessions of a profile) must
// not leave that last write past the deadline the kills set on the
// answer: the agent, which read everything, would lose its answer.
func TestSlowKillKeepsTheAnswerWhole(t *testing.T) {
	t.Parallel()
	ran := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, k := withKillsAfter(r.Context())
		if !k.add(func() { time.Sleep(answerWait + time.Second); close(ran) }) {
			t.Error("add: the kill was not queued")
		}
		defer k.answerThenRun(ctx, w)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"result":"fits the cap"}`)
	}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != `{"result":"fits the cap"}` {
		t.Fatalf("the answer of a request whose kill took %v: got %q, %v; want it whole", answerWait+time.Second, body, err)
	}
	<-ran
}
