package auditlog

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/neullabs/ringlet/audit"
)

// seqsFrom counts records into a list of seqs, for OnCommit.
type seqsFrom struct {
	mu   sync.Mutex
	seqs []int64
}

func (s *seqsFrom) add(recs []audit.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		s.seqs = append(s.seqs, r.Seq)
	}
}

func (s *seqsFrom) get() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seqs)
}

func oneTo(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}

// TestDeliveryQueueFull: 32 writers while OnCommit holds a batch and the
// queue for it is full, so that a leader waits to hand its batch over:
// once OnCommit goes on, every Append returns, OnCommit has every record
// once in seq order, the queue's gauge comes back to 0 without a Close,
// and what was delivered is what was stored.
func TestDeliveryQueueFull(t *testing.T) {
	t.Parallel()
	const writers, each, queue = 32, 20, 2
	path := dbPath(t)
	var got seqsFrom
	blocked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	l := openLog(t, Options{Path: path, deliveryQueue: queue, OnCommit: func(recs []audit.Record) {
		once.Do(func() { close(blocked); <-release })
		got.add(recs)
	}})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	wg := appendFrom(t, l, writers, each)
	within(t, "OnCommit to hold a batch", blocked)
	// The queue's batches, and one more: a leader waiting for room.
	waitFor(t, "a commit to wait for room in the delivery queue", func() bool {
		return metric(t, l.Metrics(), "ringlet_audit_delivery_queue_batches") == queue+1
	})
	unblock()
	wg.Wait()
	waitFor(t, "the delivery queue to empty", func() bool {
		return metric(t, l.Metrics(), "ringlet_audit_delivery_queue_batches") == 0
	})
	want := oneTo(writers * each)
	waitFor(t, "OnCommit to have every record", func() bool { return len(got.get()) >= len(want) })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if s := got.get(); !slices.Equal(s, want) {
		t.Errorf("OnCommit: got %d seqs %v, want 1..%d each once in order", len(s), s, len(want))
	}
	mustVerifyOK(t, path, int64(len(want)))
}

// TestOnCommitPanics: an OnCommit that panics on every batch stops
// neither the commits nor the deliveries after it, nor Close.
func TestOnCommitPanics(t *testing.T) {
	t.Parallel()
	const writers, each = 32, 10
	path := dbPath(t)
	var got seqsFrom
	l := openLog(t, Options{Path: path, deliveryQueue: 1, OnCommit: func(recs []audit.Record) {
		got.add(recs)
		panic("an observer failed")
	}})
	wg := appendFrom(t, l, writers, each)
	wg.Wait()
	if err := l.Writable(); err != nil {
		t.Errorf("Writable after OnCommit panicked: %v, want nil", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := oneTo(writers * each)
	if s := got.get(); !slices.Equal(s, want) {
		t.Errorf("OnCommit: got %d seqs, want 1..%d each once in order", len(s), len(want))
	}
	if n := metric(t, l.Metrics(), "ringlet_audit_delivery_queue_batches"); n != 0 {
		t.Errorf("ringlet_audit_delivery_queue_batches after Close: got %v, want 0", n)
	}
	mustVerifyOK(t, path, int64(len(want)))
}

// TestCloseRacingAppendDelivers closes the log while writers append, with
// a small delivery queue: after Close, OnCommit has had exactly the
// records stored, in order, and every acknowledged record among them; no
// Append after Close is acknowledged.
func TestCloseRacingAppendDelivers(t *testing.T) {
	t.Parallel()
	for iter := range 20 {
		path := dbPath(t)
		var got seqsFrom
		// A slow observer, so that batches still wait for it when Close
		// is called.
		l := openLog(t, Options{Path: path, deliveryQueue: 1 + iter%3, OnCommit: func(recs []audit.Record) {
			for range 100 {
				runtime.Gosched()
			}
			got.add(recs)
		}})
		w := appendUntilClosed(t, l, 8)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		delivered := got.get() // Close returned: OnCommit is done
		w.wg.Wait()
		if s := got.get(); len(s) != len(delivered) {
			t.Fatalf("iteration %d: OnCommit called after Close returned (%d records, then %d)", iter, len(delivered), len(s))
		}
		res := verify(t, path)
		if !res.OK {
			t.Fatalf("iteration %d: Verify: %s", iter, res.Problem)
		}
		if !slices.Equal(delivered, oneTo(res.LastSeq)) {
			t.Fatalf("iteration %d: OnCommit had %d records, the log holds 1..%d: want the same, in order", iter, len(delivered), res.LastSeq)
		}
		w.checkStored(t, iter, res.LastSeq)
	}
}

// appendFrom starts writers goroutines, each appending each records to l
// (testRecord(w*each+i) for writer w), and returns what waits for them.
func appendFrom(t *testing.T, l *Log, writers, each int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := l.Append(context.Background(), testRecord(w*each+i)); err != nil {
					t.Errorf("writer %d, Append %d: %v", w, i, err)
					return
				}
			}
		})
	}
	return &wg
}
