package gateway

import (
	"context"
	"errors"
	"testing"
)

func liveState(t *testing.T) *proxyState {
	ctx, cancel := context.WithCancelCause(t.Context())
	t.Cleanup(func() { cancel(nil) })
	return &proxyState{ctx: ctx, cancel: cancel}
}

// The session's end cancels the requests in flight and any added after
// it, with errSessionEnded; a request removed before is left alone.
func TestLiveRequestsEnd(t *testing.T) {
	var l liveRequests
	a, b, c, done := liveState(t), liveState(t), liveState(t), liveState(t)
	l.add(a)
	l.add(done)
	l.add(b)
	l.remove(done)
	l.remove(done) // twice: harmless
	l.end()
	l.add(c)
	for name, st := range map[string]*proxyState{"first": a, "last": b, "added after the end": c} {
		if cause := context.Cause(st.ctx); !errors.Is(cause, errSessionEnded) {
			t.Errorf("%s: got cause %v, want %v", name, cause, errSessionEnded)
		}
	}
	if err := done.ctx.Err(); err != nil {
		t.Errorf("a request removed before the end: got %v, want not cancelled", err)
	}
	l.remove(a)
	l.remove(c)
	l.remove(b)
	if l.head != nil {
		t.Errorf("after every remove: got head %p, want nil", l.head)
	}
}

// Removing from the middle and the ends keeps the rest linked.
func TestLiveRequestsRemove(t *testing.T) {
	var l liveRequests
	s := []*proxyState{liveState(t), liveState(t), liveState(t), liveState(t)}
	for _, st := range s {
		l.add(st)
	}
	l.remove(s[1]) // middle
	l.remove(s[3]) // head
	l.remove(s[0]) // tail
	if l.head != s[2] || s[2].liveNext != nil || s[2].livePrev != nil {
		t.Fatalf("got head %p, want the one left %p alone", l.head, s[2])
	}
	l.end()
	if !errors.Is(context.Cause(s[2].ctx), errSessionEnded) {
		t.Error("the one left: not cancelled by the end")
	}
	for _, st := range []*proxyState{s[0], s[1], s[3]} {
		if st.ctx.Err() != nil {
			t.Error("a removed request was cancelled by the end")
		}
	}
}

// A request's watch on its session's end allocates nothing (a
// context.AfterFunc per request cost three).
func TestLiveRequestsAllocations(t *testing.T) {
	var l liveRequests
	st := liveState(t)
	if got := testing.AllocsPerRun(100, func() {
		l.add(st)
		l.remove(st)
	}); got != 0 {
		t.Errorf("add and remove: got %v allocations, want 0", got)
	}
}
