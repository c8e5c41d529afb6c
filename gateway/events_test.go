package gateway

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/neullabs/ringlet/api"
)

// isClosed reports whether ch is closed, without blocking.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestSlowSubscriberDropped(t *testing.T) {
	t.Parallel()
	b := newEventBus()
	slow := b.subscribe(nil, "")
	reader := b.subscribe(nil, "")

	// reader drains its channel after every publish; slow never reads.
	// Publishing runs in a goroutine so a blocking publish fails the test
	// instead of hanging it.
	const total = 3 * subscriberBuffer
	type result struct {
		keptAtBuffer bool // slow still subscribed after exactly subscriberBuffer events
		read         int  // events reader received
	}
	done := make(chan result, 1)
	go func() {
		var res result
		for i := range total {
			b.publish(api.Event{Kind: "k", Seq: int64(i)})
			select {
			case <-reader.ch:
				res.read++
			default:
			}
			if i == subscriberBuffer-1 {
				res.keptAtBuffer = !isClosed(slow.slow)
			}
		}
		done <- res
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("publish blocked on a subscriber that does not read")
	}

	if !res.keptAtBuffer {
		t.Errorf("slow subscriber dropped after %d events, want it kept while its buffer has room", subscriberBuffer)
	}
	if !isClosed(slow.slow) {
		t.Errorf("slow channel: still open after %d events, want closed", total)
	}
	if got := len(slow.ch); got != subscriberBuffer {
		t.Errorf("slow subscriber buffer: got %d events, want %d", got, subscriberBuffer)
	}
	b.mu.Lock()
	_, slowKept := b.subs[slow]
	_, readerKept := b.subs[reader]
	b.mu.Unlock()
	if slowKept {
		t.Errorf("slow subscriber: still subscribed, want dropped")
	}
	if !readerKept || isClosed(reader.slow) {
		t.Errorf("reading subscriber: got kept=%v slow=%v, want kept and not slow", readerKept, isClosed(reader.slow))
	}
	if res.read != total {
		t.Errorf("reading subscriber got %d events, want %d", res.read, total)
	}
	// Unsubscribing a subscriber that was already dropped is harmless.
	b.unsubscribe(slow)
	b.unsubscribe(reader)
	b.publish(api.Event{Kind: "k"})
	if len(reader.ch) != 0 {
		t.Errorf("unsubscribed reader: got %d events, want 0", len(reader.ch))
	}
}

func TestPublishFilters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		kinds   []string
		profile string
		event   api.Event
		want    bool
	}{
		{name: "no filter", event: api.Event{Kind: "a"}, want: true},
		{name: "kind match", kinds: []string{"a", "b"}, event: api.Event{Kind: "b"}, want: true},
		{name: "kind mismatch", kinds: []string{"a"}, event: api.Event{Kind: "b"}},
		{name: "profile match", profile: "p", event: api.Event{Kind: "a", Profile: "p"}, want: true},
		{name: "profile mismatch", profile: "p", event: api.Event{Kind: "a", Profile: "q"}},
		{name: "profile filter skips profile-less events", profile: "p", event: api.Event{Kind: "a"}},
		{name: "kind and profile", kinds: []string{"a"}, profile: "p", event: api.Event{Kind: "a", Profile: "p"}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newEventBus()
			s := b.subscribe(tt.kinds, tt.profile)
			b.publish(tt.event)
			var got bool
			select {
			case data := <-s.ch:
				got = true
				var e api.Event
				if err := json.Unmarshal(data, &e); err != nil {
					t.Fatalf("decode %s: %v", data, err)
				}
				if e.Kind != tt.event.Kind || e.Profile != tt.event.Profile {
					t.Errorf("event: got %+v, want %+v", e, tt.event)
				}
			default:
			}
			if got != tt.want {
				t.Errorf("delivered: got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFilteredSubscriberNotDropped checks that events a subscriber filters
// out do not count against its buffer.
func TestFilteredSubscriberNotDropped(t *testing.T) {
	t.Parallel()
	b := newEventBus()
	s := b.subscribe([]string{"rare"}, "")
	for i := range 2 * subscriberBuffer {
		b.publish(api.Event{Kind: "common-" + strconv.Itoa(i%3)})
	}
	if isClosed(s.slow) || len(s.ch) != 0 {
		t.Errorf("got slow=%v and %d buffered events, want not slow and none", isClosed(s.slow), len(s.ch))
	}
}
