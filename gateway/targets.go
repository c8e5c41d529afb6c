package gateway

import (
	"net/url"
	"sync/atomic"
)

// upstreamTargets remembers the last few upstream URLs a session's
// requests went to: upstreamURL's join and url.Parse are two allocations
// per request, and an agent sends nearly all of its requests to one or
// two paths. An entry is never changed once stored, and each request
// copies its URL into a url.URL of its own.
type upstreamTargets struct {
	next  atomic.Uint32
	slots [4]atomic.Pointer[upstreamTarget]
}

type upstreamTarget struct {
	path string  // the checked path upstreamURL joined to the base
	u    url.URL // upstreamURL's result, without a query
}

// get sets *into to upstreamURL(sess.base, sess.baseString(), path,
// rawQuery); the session's base never changes.
func (t *upstreamTargets) get(sess *session, path, rawQuery string, into *url.URL) error {
	for i := range t.slots {
		if e := t.slots[i].Load(); e != nil && e.path == path {
			*into = e.u
			into.RawQuery = rawQuery
			return nil
		}
	}
	u, err := upstreamURL(sess.base, sess.baseString(), path, "")
	if err != nil {
		return err
	}
	t.slots[t.next.Add(1)%uint32(len(t.slots))].Store(&upstreamTarget{path: path, u: *u})
	*into = *u
	into.RawQuery = rawQuery
	return nil
}
