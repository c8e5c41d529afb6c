package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/neullabs/ringlet/api"
)

// subscriberBuffer is how many events a reader may fall behind before it
// is disconnected: the publisher never waits for a slow reader.
const subscriberBuffer = 256

type subscriber struct {
	kinds   map[string]bool // empty means every kind
	profile string
	ch      chan []byte
	slow    chan struct{} // closed when the reader fell behind
}

// eventBus fans events out to WebSocket subscribers.
type eventBus struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

func newEventBus() *eventBus { return &eventBus{subs: map[*subscriber]struct{}{}} }

func (b *eventBus) subscribe(kinds []string, profile string) *subscriber {
	s := &subscriber{kinds: map[string]bool{}, profile: profile, ch: make(chan []byte, subscriberBuffer), slow: make(chan struct{})}
	for _, k := range kinds {
		s.kinds[k] = true
	}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

func (b *eventBus) unsubscribe(s *subscriber) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// publish delivers e to every matching subscriber without blocking; a
// subscriber whose buffer is full is marked slow and dropped.
func (b *eventBus) publish(e api.Event) {
	b.mu.Lock()
	none := len(b.subs) == 0
	b.mu.Unlock()
	if none {
		// Nobody listens: the encoding would be thrown away.
		return
	}
	data, err := json.Marshal(e)
	if err != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if len(s.kinds) > 0 && !s.kinds[e.Kind] {
			continue
		}
		if s.profile != "" && s.profile != e.Profile {
			continue
		}
		select {
		case s.ch <- data:
		default:
			close(s.slow)
			delete(b.subs, s)
		}
	}
}

// handleEvents upgrades to a WebSocket and streams events as JSON text
// messages. Query parameters kind (repeatable or comma-separated) and
// profile filter the stream. The connection is closed with a reason when
// the token it was opened with is rotated, when the reader falls behind,
// and when the daemon shuts down.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	var kinds []string
	for _, k := range r.URL.Query()["kind"] {
		for _, part := range strings.Split(k, ",") {
			if part = strings.TrimSpace(part); part != "" {
				kinds = append(kinds, part)
			}
		}
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"bearer"}})
	if err != nil {
		s.log.Debug("websocket handshake failed", "err", err)
		return
	}
	s.life.streams.Add(1)
	defer s.life.streams.Done()
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()

	sub := s.bus.subscribe(kinds, r.URL.Query().Get("profile"))
	defer s.bus.unsubscribe(sub)

	// CloseRead handles pings and the peer's close frame; its context ends
	// when the peer goes away. It must not see the token's cancellation:
	// coder/websocket drops the connection at once when a read or write
	// context ends, and the peer would never get the close reason below.
	peer := c.CloseRead(context.WithoutCancel(r.Context()))
	ctx := r.Context() // ends when the token is rotated
	for {
		select {
		case data := <-sub.ch:
			wctx, cancel := context.WithTimeout(peer, 10*time.Second)
			err := c.Write(wctx, websocket.MessageText, data)
			cancel()
			if err != nil {
				c.Close(websocket.StatusPolicyViolation, "write timed out")
				return
			}
		case <-sub.slow:
			c.Close(websocket.StatusPolicyViolation, "reader too slow; events were dropped, reconnect")
			return
		case <-s.life.closing.Done():
			c.Close(websocket.StatusGoingAway, "daemon shutting down")
			return
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), errTokenRotated) {
				c.Close(websocket.StatusPolicyViolation, "token rotated")
			} else {
				c.Close(websocket.StatusNormalClosure, "")
			}
			return
		case <-peer.Done():
			c.Close(websocket.StatusNormalClosure, "")
			return
		}
	}
}
