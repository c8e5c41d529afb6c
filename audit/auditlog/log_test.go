package auditlog

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neullabs/ringlet/audit"
)

func TestAppendChain(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	recs := appendN(t, l, 10)

	prev := strings.Repeat("0", 64)
	for i, r := range recs {
		if r.Seq != int64(i+1) {
			t.Errorf("record %d: got seq %d, want %d", i, r.Seq, i+1)
		}
		if r.PrevHash != prev {
			t.Errorf("record %d: got prev hash %s, want %s", r.Seq, r.PrevHash, prev)
		}
		p, _ := hex.DecodeString(r.PrevHash)
		if want := hex.EncodeToString(audit.ChainHash(p, &r)); r.Hash != want {
			t.Errorf("record %d: got hash %s, want SHA-256(prev || canonical) %s", r.Seq, r.Hash, want)
		}
		if r.Time.IsZero() || r.Time.Location() != time.UTC {
			t.Errorf("record %d: got time %v, want a UTC time set by Append", r.Seq, r.Time)
		}
		prev = r.Hash
	}

	// What Append returned is what was stored.
	stored := allRecords(t, path)
	slices.Reverse(stored)
	if len(stored) != len(recs) {
		t.Fatalf("Query: got %d records, want %d", len(stored), len(recs))
	}
	for i := range recs {
		if got, want := string(stored[i].Canonical())+stored[i].Hash, string(recs[i].Canonical())+recs[i].Hash; got != want {
			t.Errorf("record %d: stored record differs from the one Append returned", recs[i].Seq)
		}
	}
	res := mustVerifyOK(t, path, 10)
	if res.LastHash != recs[9].Hash {
		t.Errorf("Verify: got last hash %s, want %s", res.LastHash, recs[9].Hash)
	}
}

func TestAppendConcurrent(t *testing.T) {
	t.Parallel()
	const n = 200
	path := dbPath(t)
	var mu sync.Mutex
	var committed []int64
	l, err := Open(Options{Path: path, OnCommit: func(recs []audit.Record) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			committed = append(committed, r.Seq)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	seqs := make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := l.Append(t.Context(), testRecord(i))
			if err != nil {
				t.Errorf("Append %d: %v", i, err)
				return
			}
			seqs[i] = r.Seq
		})
	}
	wg.Wait()
	// Close waits for the last commit and its delivery, so every OnCommit
	// call has returned.
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	want := make([]int64, n)
	for i := range want {
		want[i] = int64(i + 1)
	}
	slices.Sort(seqs)
	if !slices.Equal(seqs, want) {
		t.Errorf("seqs returned by %d concurrent Appends: got %v, want 1..%d each once", n, seqs, n)
	}
	if !slices.Equal(committed, want) {
		t.Errorf("OnCommit: got seqs %v, want 1..%d each once in order", committed, n)
	}
	stored := allRecords(t, path)
	var got []int64
	for _, r := range stored {
		got = append(got, r.Seq)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("stored seqs: got %v, want 1..%d", got, n)
	}
	mustVerifyOK(t, path, n)
}

func TestAppendAfterClose(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	appendN(t, l, 1)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	_, err := l.Append(t.Context(), testRecord(1))
	if !errors.Is(err, audit.ErrUnavailable) || !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: got %v, want an error matching ErrUnavailable and ErrClosed", err)
	}
	mustVerifyOK(t, path, 1)
}

// TestAppendCanceled checks that a cancelled Append never acknowledges a
// record that was not written, nor refuses one that was: which of the two
// happens is up to the select, but the count must agree.
func TestAppendCanceled(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var ok int64
	for i := range 50 {
		_, err := l.Append(ctx, testRecord(i))
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, audit.ErrUnavailable) || !errors.Is(err, context.Canceled):
			t.Fatalf("Append with a cancelled context: got %v, want nil or an error matching ErrUnavailable and context.Canceled", err)
		}
	}
	l.Close()
	mustVerifyOK(t, path, ok)
}

// TestAppendDoesNotWaitForOnCommit: an Append returns once its record is
// committed, while OnCommit still holds its batch; the batch is delivered
// all the same, and Close waits for that.
func TestAppendDoesNotWaitForOnCommit(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	blocked, release := make(chan struct{}), make(chan struct{})
	var got atomic.Int64
	first := sync.OnceFunc(func() { close(blocked) })
	l := openLog(t, Options{Path: path, OnCommit: func(recs []audit.Record) {
		first()
		<-release
		got.Add(int64(len(recs)))
	}})
	// Released before openLog's cleanup closes the log, should the test
	// fail while OnCommit holds its batch.
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	done := make(chan error, 1)
	go func() {
		_, err := l.Append(context.Background(), testRecord(0))
		done <- err
	}()
	within(t, "OnCommit to be called", blocked)
	if err := within(t, "Append to return while OnCommit holds its batch", done); err != nil {
		t.Fatalf("Append: %v", err)
	}
	// Two more commits queue behind the held batch, and the metric
	// counts them.
	for i := 1; i <= 2; i++ {
		if _, err := l.Append(context.Background(), testRecord(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	if n := metric(t, l.Metrics(), "ringlet_audit_delivery_queue_batches"); n != 2 {
		t.Errorf("ringlet_audit_delivery_queue_batches while OnCommit holds a batch: got %v, want 2", n)
	}
	unblock()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := got.Load(); n != 3 {
		t.Errorf("records delivered to OnCommit before Close returned: got %d, want 3", n)
	}
	if n := metric(t, l.Metrics(), "ringlet_audit_delivery_queue_batches"); n != 0 {
		t.Errorf("ringlet_audit_delivery_queue_batches after Close: got %v, want 0", n)
	}
}

// TestCloseDrainsQueue holds OnCommit (which should not block in
// production; here it is the only way to pause commits) with no room to
// queue a batch for it, so that a leader waits to hand its batch over and
// records are queued, not yet committed, when Close is called.
func TestCloseDrainsQueue(t *testing.T) {
	t.Parallel()
	const n = 50
	path := dbPath(t)
	blocked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var committed []int64
	l := openLog(t, Options{Path: path, deliveryQueue: -1, OnCommit: func(recs []audit.Record) {
		once.Do(func() { close(blocked); <-release })
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			committed = append(committed, r.Seq)
		}
	}})
	// The first record's batch blocks in OnCommit; its Append returns.
	if _, err := l.Append(context.Background(), testRecord(0)); err != nil {
		t.Fatalf("first Append: %v", err)
	}
	within(t, "OnCommit to hold the first batch", blocked)
	// The second is committed, and its leader waits to hand it over.
	second := make(chan error, 1)
	go func() {
		_, err := l.Append(context.Background(), testRecord(1))
		second <- err
	}()
	waitFor(t, "the second record to be committed", func() bool { return len(allRecords(t, path)) == 2 })

	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := l.Append(context.Background(), testRecord(i+2))
			errs <- err
		}()
	}
	waitFor(t, "records to queue", func() bool { return metric(t, l.Metrics(), "ringlet_audit_queue_depth") == n })

	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	waitFor(t, "Close to stop accepting records", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.closed
	})
	if _, err := l.Append(t.Context(), testRecord(n+2)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append during Close: got %v, want an error matching ErrClosed", err)
	}
	close(release)
	if err := within(t, "the second Append to return", second); err != nil {
		t.Errorf("second Append: %v", err)
	}
	for range n {
		if err := within(t, "a queued Append to return", errs); err != nil {
			t.Errorf("Append queued before Close: got %v, want nil", err)
		}
	}
	if err := within(t, "Close to return", closed); err != nil {
		t.Errorf("Close: %v", err)
	}
	want := make([]int64, n+2)
	for i := range want {
		want[i] = int64(i + 1)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(committed, want) {
		t.Errorf("OnCommit: got seqs %v, want 1..%d in order", committed, n+2)
	}
	mustVerifyOK(t, path, n+2)
}

// TestAppendRacingClose closes the log while writers keep appending: every
// Append must return, and every record it acknowledged must be stored.
func TestAppendRacingClose(t *testing.T) {
	t.Parallel()
	for iter := range 20 {
		path := dbPath(t)
		l, err := Open(Options{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		w := appendUntilClosed(t, l, 4)
		l.Close()
		done := make(chan struct{})
		go func() { w.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("iteration %d: Append still blocked 10s after Close returned", iter)
		}
		res := verify(t, path)
		if !res.OK {
			t.Fatalf("iteration %d: Verify: %s", iter, res.Problem)
		}
		w.checkStored(t, iter, res.LastSeq)
	}
}

// closeRacers are writers appending to a log until it is closed.
type closeRacers struct {
	acked sync.Map // seq -> true: the records an Append acknowledged
	wg    sync.WaitGroup
}

// appendUntilClosed starts n writers that append to l until an Append
// fails (with ErrUnavailable, or the test fails), and returns once each
// has had one record acknowledged.
func appendUntilClosed(t *testing.T, l *Log, n int) *closeRacers {
	w := &closeRacers{}
	started := make(chan struct{}, n)
	for range n {
		w.wg.Go(func() {
			for i := 0; ; i++ {
				r, err := l.Append(context.Background(), testRecord(i))
				if err != nil {
					if !errors.Is(err, audit.ErrUnavailable) {
						t.Errorf("Append: got %v, want an error matching ErrUnavailable", err)
					}
					return
				}
				w.acked.Store(r.Seq, true)
				if i == 0 {
					started <- struct{}{}
				}
			}
		})
	}
	for range n {
		<-started
	}
	return w
}

// checkStored fails the test for any acknowledged record past last, the
// log's last.
func (w *closeRacers) checkStored(t *testing.T, iter int, last int64) {
	t.Helper()
	w.acked.Range(func(k, _ any) bool {
		if seq := k.(int64); seq > last {
			t.Errorf("iteration %d: record %d was acknowledged but the log ends at %d", iter, seq, last)
		}
		return true
	})
}

func TestReopenContinuesChain(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	first := openLog(t, Options{Path: path})
	a := appendN(t, first, 5)
	first.Close()

	second := openLog(t, Options{Path: path, Sync: SyncFull})
	b := appendN(t, second, 5)
	second.Close()

	if b[0].Seq != 6 || b[0].PrevHash != a[4].Hash {
		t.Errorf("first record after reopening: got seq %d prev %s, want seq 6 prev %s", b[0].Seq, b[0].PrevHash, a[4].Hash)
	}
	res := mustVerifyOK(t, path, 10)
	if res.LastSeq != 10 || res.AnchorSeq != 10 {
		t.Errorf("Verify: got last seq %d anchor %d, want 10 and 10", res.LastSeq, res.AnchorSeq)
	}
}

// TestTwoWriters opens the same database twice, as the CLI does while the
// daemon runs, and appends through both.
func TestTwoWriters(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	daemon := openLog(t, Options{Path: path})
	cli := openLog(t, Options{Path: path})

	// Strictly alternating: each log must pick up the other's tip.
	for i := range 6 {
		l := daemon
		if i%2 == 1 {
			l = cli
		}
		r, err := l.Append(t.Context(), testRecord(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		if r.Seq != int64(i+1) {
			t.Fatalf("alternating Append %d: got seq %d, want %d", i, r.Seq, i+1)
		}
	}

	// Concurrently.
	const per = 40
	var wg sync.WaitGroup
	for _, l := range []*Log{daemon, cli} {
		for w := range 4 {
			wg.Go(func() {
				for i := range per / 4 {
					if _, err := l.Append(t.Context(), testRecord(w*100+i)); err != nil {
						t.Errorf("Append: %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	daemon.Close()
	cli.Close()

	total := int64(6 + 2*per)
	res := mustVerifyOK(t, path, total)
	a, ok, err := audit.ReadAnchor(path)
	if err != nil || !ok {
		t.Fatalf("ReadAnchor: got ok=%v err=%v, want an anchor", ok, err)
	}
	if a.Seq != total || a.Hash != res.LastHash {
		t.Errorf("anchor: got (%d, %s), want (%d, %s)", a.Seq, a.Hash, total, res.LastHash)
	}
}

func TestOpenInvalidSync(t *testing.T) {
	t.Parallel()
	_, err := Open(Options{Path: dbPath(t), Sync: "sometimes"})
	if err == nil || !strings.Contains(err.Error(), "accepted values: normal, full") {
		t.Errorf("Open with sync %q: got %v, want an error listing the accepted values", "sometimes", err)
	}
}

// TestOpenFindsOpenSessions: with FindOpenSessions, Open reads the
// sessions started and not ended, as audit.OpenSessions does on its own
// connection; without it, none.
func TestOpenFindsOpenSessions(t *testing.T) {
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	for _, r := range []audit.Record{
		{Kind: audit.KindSessionStart, Profile: "work", Session: "s1", Actor: audit.ActorDaemon, Decision: audit.Allow},
		{Kind: audit.KindSessionStart, Profile: "work", Session: "s2", Actor: audit.ActorDaemon, Decision: audit.Allow},
		{Kind: audit.KindSessionEnd, Profile: "work", Session: "s1", Actor: audit.ActorDaemon, Decision: audit.Allow},
		{Kind: audit.KindSessionStart, Profile: "home", Session: "s3", Actor: audit.ActorDaemon, Decision: audit.Allow},
	} {
		if _, err := l.Append(t.Context(), r); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	l.Close()

	want, err := audit.OpenSessions(t.Context(), path)
	if err != nil {
		t.Fatalf("audit.OpenSessions: %v", err)
	}
	if len(want) != 2 || want[0].Session != "s2" || want[1].Session != "s3" {
		t.Fatalf("audit.OpenSessions: got %v, want s2 and s3", want)
	}
	without := openLog(t, Options{Path: path})
	if got := without.OpenSessions(); got != nil {
		t.Errorf("without FindOpenSessions: got %v, want none", got)
	}
	without.Close()
	got := openLog(t, Options{Path: path, FindOpenSessions: true}).OpenSessions()
	if len(got) != len(want) {
		t.Fatalf("with FindOpenSessions: got %d sessions, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Seq != want[i].Seq || got[i].Session != want[i].Session || got[i].Profile != want[i].Profile || got[i].Hash != want[i].Hash {
			t.Errorf("with FindOpenSessions, session %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
