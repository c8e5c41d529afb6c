package gateway

import (
	"bytes"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// How request bodies use memory. A body is read whole (see handleProxy),
// so a burst of large bodies makes the heap as large as the bodies held
// at once. Two things would keep that memory from the system long after
// the burst: a pool that keeps large buffers (a sync.Pool keeps what it
// is given through the next collection), and the collector itself, which
// is paced by allocation: an idle daemon allocates next to nothing, so
// the garbage of a burst would wait for the runtime's forced collection
// every two minutes (and pooled buffers for the one after it). So small
// bodies reuse pooled buffers, a large body gets a buffer of its own size
// that no pool keeps, and once large bodies stop coming the daemon runs
// one collection and returns the freed pages to the system
// (debug.FreeOSMemory). A collection alone (runtime.GC) is not enough:
// the runtime's background scavenger leaves alone the heap chunks that
// were dense during the last collection cycle (to keep huge pages whole),
// which after a burst is most of them, until a later cycle, and an idle
// daemon has none for two minutes. Measured with BenchmarkProxyMemory:
// 73 MiB a minute after a burst with runtime.GC, under 30 MiB within
// seconds with FreeOSMemory.

// largeBody is the size from which a body is not pooled and its release
// prompts the collection after a burst.
const largeBody = 64 << 10

// burstCollectDelay is how long after the last large body was released
// the collection runs: long enough that back-to-back large requests cause
// one collection, not one each.
const burstCollectDelay = time.Second

// smallBodies holds buffers for request bodies under largeBody.
var smallBodies = boundedPool{max: largeBody}

// boundedPool is a pool of buffers that keeps none larger than max.
type boundedPool struct {
	p   sync.Pool
	max int
}

func (p *boundedPool) get() *bytes.Buffer {
	if v, ok := p.p.Get().(*bytes.Buffer); ok {
		v.Reset()
		return v
	}
	return new(bytes.Buffer)
}

func (p *boundedPool) put(b *bytes.Buffer) {
	if b.Cap() <= p.max {
		p.p.Put(b)
	}
}

// requestBody is a request body read whole; free gives its buffer back.
type requestBody struct {
	buf *bytes.Buffer
}

// readRequestBody reads r to its end. length is the declared length, or -1: a
// body declared large is read into a buffer of exactly its size (one
// allocation instead of a doubling series, none kept afterwards).
func readRequestBody(r io.Reader, length int64) (requestBody, error) {
	var buf *bytes.Buffer
	if length >= largeBody {
		// MinRead spare: ReadFrom grows a buffer with less room than
		// that before it reads the EOF.
		buf = bytes.NewBuffer(make([]byte, 0, length+bytes.MinRead))
	} else {
		buf = smallBodies.get()
	}
	_, err := buf.ReadFrom(r)
	return requestBody{buf: buf}, err
}

// bytes is the body; valid until free.
func (rb requestBody) bytes() []byte { return rb.buf.Bytes() }

func (rb requestBody) free() { smallBodies.put(rb.buf) }

// burstCollector runs one garbage collection once the large request
// bodies a burst brought are all released.
type burstCollector struct {
	// large: a large body was read since the last collection.
	large atomic.Bool
	// pending: a collection is scheduled.
	pending atomic.Bool
	// collect and delay are debug.FreeOSMemory and burstCollectDelay but
	// in tests.
	collect func()
	delay   time.Duration
}

// read notes a body of n bytes that is (or is declared to be) read into
// memory. Only bytes read count: a body of unknown length holds the most
// it may be in the budget until it is in, but a client that sends less
// (or breaks off) does not make the daemon collect.
func (c *burstCollector) read(n int64) {
	if n >= largeBody {
		c.large.Store(true)
	}
}

// released notes that a body was released, held the bytes of bodies still
// held; after a large one, once the held bodies are all small, it
// schedules the collection.
func (c *burstCollector) released(held *atomic.Int64) {
	if held.Load() >= largeBody || !c.large.Load() || !c.pending.CompareAndSwap(false, true) {
		return
	}
	delay, collect := c.delay, c.collect
	if delay == 0 {
		delay = burstCollectDelay
	}
	if collect == nil {
		collect = debug.FreeOSMemory
	}
	time.AfterFunc(delay, func() {
		// A new burst has begun: its last release schedules again.
		if held.Load() < largeBody {
			c.large.Store(false)
			collect()
		}
		c.pending.Store(false)
		// A large body released during the collection.
		c.released(held)
	})
}
