package gateway

import "sync"

// liveRequests are a session's proxied requests in flight; the session's
// end cancels them all (cause errSessionEnded). It is one list per
// session, ended by the one context.AfterFunc its proxySession has: a
// context.AfterFunc per request would cost three allocations each.
type liveRequests struct {
	mu    sync.Mutex
	ended bool
	head  *proxyState // linked through the states' livePrev and liveNext
}

// add puts st in the list, or cancels it at once when the session has
// already ended.
func (l *liveRequests) add(st *proxyState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		st.cancel(errSessionEnded)
		return
	}
	st.liveNext = l.head
	if l.head != nil {
		l.head.livePrev = st
	}
	l.head = st
	st.inLive = true
}

// remove takes st out of the list, once the request is over.
func (l *liveRequests) remove(st *proxyState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !st.inLive {
		return
	}
	if st.livePrev != nil {
		st.livePrev.liveNext = st.liveNext
	} else {
		l.head = st.liveNext
	}
	if st.liveNext != nil {
		st.liveNext.livePrev = st.livePrev
	}
	st.livePrev, st.liveNext, st.inLive = nil, nil, false
}

// end cancels every request in the list and every one added later. The
// cancels only close channels, so holding the lock through them is safe.
func (l *liveRequests) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended = true
	for st := l.head; st != nil; st = st.liveNext {
		st.cancel(errSessionEnded)
	}
}
