package provider

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"math/bits"
)

// Redacted replaces a secret that an upstream echoed back.
const Redacted = "[redacted]"

// MinEncodedLen is the shortest secret whose base64 and hex forms are
// redacted too: those of a shorter one are too short to tell from other
// text. Provider keys and tokens are far longer.
const MinEncodedLen = 8

// Secrets is a set of secrets compiled into the forms the redactor looks
// for. Each secret is matched
//
//   - as itself;
//   - as its lower- or upper-case hex, any mix of cases;
//   - inside any longer base64 text, standard or URL alphabet, padded or
//     not, at each of the three alignments: what is matched is the run of
//     base64 characters that depend on the secret's bytes alone (the
//     secret's base64 core);
//
// the last two only for secrets of at least MinEncodedLen bytes. In every
// form, any byte may also appear escaped the way a JSON or URL encoder
// writes it, one byte or all of them, mixed with plain ones: \u00XX with
// upper- or lower-case hex digits (for ASCII bytes), the short JSON
// escapes (\" \\ \/ \b \f \n \r \t) and %XX in either case; and the same
// escapes put again into further JSON strings or URLs (the backslash of
// an escape written as a run of backslashes, \\u0073, the percent sign as
// %25, %2573). So a key a JSON encoder wrote with "\u002f" or "\/" for
// "/", a URL encoder with %2B, a JSON document carried as a string in
// another, or the base64 of a header line that holds the key, are all
// found, also when an upstream writes them split across chunks.
//
// Not matched: other combinations of encodings (the base64 or hex of an
// escaped key, a JSON escape percent-encoded), base64 broken into lines,
// and escapes of non-ASCII characters as \uXXXX code points.
//
// A Secrets is immutable and safe for concurrent use: one serves any number
// of Redactors. It never prints its secrets.
type Secrets struct {
	pats []pattern
	// start marks the bytes with which a match can begin: the first byte
	// of a form (either case for hex), '%' and '\'.
	start [256]byte
	// plainRuns is true when no pattern holds a backslash.
	plainRuns bool
	// pair[c][next/64] has bit next%64 set when a match can begin with
	// c followed by next (spawnMask of the two is not empty).
	pair [256][4]uint64
	// first[c] has bit k set when pattern k can begin with the plain
	// byte c; ascii has the bits of the patterns whose first byte is
	// ASCII (it may be written \u00XX), and hi[v] those whose first
	// byte's high nibble is v (it may be written %vX). With more than 64
	// patterns every mask is all ones: the threads sort it out.
	first [256]uint64
	ascii uint64
	hi    [16]uint64
}

// pattern is one form of a secret: the bytes a match decodes to.
type pattern struct {
	b []byte
	// fold makes the hex letters a-f (stored lower case) match A-F too.
	fold bool
}

// NewSecrets compiles secrets; empty ones are ignored, and with none left
// the redactors pass everything through.
func NewSecrets(secrets ...string) *Secrets {
	s := &Secrets{}
	size := 0
	for _, secret := range secrets {
		if n := len(secret); n >= MinEncodedLen {
			size += 3*n + 6*(4*n/3+1)
		} else {
			size += n
		}
	}
	// One array holds every form; each is a slice of it.
	arena := make([]byte, 0, size)
	s.pats = make([]pattern, 0, 8*len(secrets))
	var scratch []byte
	add := func(n int, fold bool) {
		b := arena[n:]
		for _, p := range s.pats {
			if p.fold == fold && bytes.Equal(p.b, b) {
				arena = arena[:n]
				return
			}
		}
		s.pats = append(s.pats, pattern{b: b, fold: fold})
	}
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		n := len(arena)
		arena = append(arena, secret...)
		add(n, false)
		raw := arena[n:]
		if len(raw) < MinEncodedLen {
			continue
		}
		n = len(arena)
		arena = hex.AppendEncode(arena, raw)
		add(n, true)
		// The secret after 0, 1 and 2 other bytes, then its base64.
		scratch = append(append(scratch[:0], 0, 0), raw...)
		in := len(scratch)
		for _, enc := range [...]*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			for k := range 3 {
				scratch = enc.AppendEncode(scratch[:in], scratch[2-k:in])
				n = len(arena)
				arena = append(arena, base64Core(scratch[in:], k, len(raw))...)
				add(n, false)
			}
		}
	}
	all := ^uint64(0)
	for k, p := range s.pats {
		bit := uint64(1) << (k & 63)
		if len(s.pats) > 64 {
			bit = all
		}
		c := p.b[0]
		s.start[c] = 1
		s.first[c] |= bit
		if p.fold {
			s.start[upperHex(c)] = 1
			s.first[upperHex(c)] |= bit
			s.hi[upperHex(c)>>4] |= bit
		}
		s.hi[c>>4] |= bit
		if c < 0x80 {
			s.ascii |= bit
		}
	}
	if len(s.pats) > 0 {
		s.start['%'] = 1
		s.start['\\'] = 1
	}
	s.fillPairs()
	s.plainRuns = true
	for _, p := range s.pats {
		if bytes.IndexByte(p.b, '\\') >= 0 {
			s.plainRuns = false
		}
	}
	return s
}

// base64Core is the part of the base64 of any text that holds a secret of
// n bytes after k other bytes which depends on the secret alone: the
// characters whose six bits all come from the secret. full is the base64
// of the k bytes and the secret.
func base64Core(full []byte, k, n int) []byte {
	first := (8*k + 5) / 6  // the first character that starts at or after the secret's first bit
	last := (8*k+8*n)/6 - 1 // the last character that ends at or before its last bit
	return full[first : last+1]
}

// fillPairs sets pair: every two bytes that spawnMask of the two alone
// does not rule out.
func (s *Secrets) fillPairs() {
	set := func(c, next byte) { s.pair[c][next/64] |= 1 << (next % 64) }
	if len(s.pats) > 64 {
		for c := range 256 {
			if s.start[c] != 0 {
				s.pair[c] = [4]uint64{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
			}
		}
		return
	}
	for _, p := range s.pats {
		firsts := []byte{p.b[0]}
		if p.fold && upperHex(p.b[0]) != p.b[0] {
			firsts = append(firsts, upperHex(p.b[0]))
		}
		for _, c := range firsts {
			set(c, '%')
			set(c, '\\')
			if len(p.b) == 1 {
				for next := range 256 {
					set(c, byte(next))
				}
				continue
			}
			set(c, p.b[1])
			if p.fold {
				set(c, upperHex(p.b[1]))
			}
		}
	}
	if len(s.pats) == 0 {
		return
	}
	// '%' then a high nibble some first byte has, or a '2' (of %25).
	set('%', '2')
	for v := range 16 {
		if s.hi[v] != 0 {
			set('%', "0123456789abcdef"[v])
			set('%', "0123456789ABCDEF"[v])
		}
	}
	// '\' then 'u', another '\', or a short escape of a first byte.
	set('\\', '\\')
	if s.ascii != 0 {
		set('\\', 'u')
	}
	for e := range 256 {
		if b := shortEscape[e]; b >= 0 && s.first[b] != 0 {
			set('\\', byte(e))
		}
	}
}

// spawnMask returns the patterns a match of which can begin at data[j],
// as far as the bytes from there show; it may name more, never fewer.
func spawnMask[S ~string | ~[]byte](s *Secrets, data S, j int) uint64 {
	c := data[j]
	if j+1 == len(data) {
		return s.spawnAll(c)
	}
	next := data[j+1]
	var mask uint64
	switch c {
	case '%':
		// %HH after up to maxPct25 %25s: each reading names the
		// patterns that begin with byte HH.
		for q, n := j+1, 0; n <= maxPct25; q, n = q+2, n+1 {
			if q >= len(data) {
				mask = ^uint64(0) // not known yet
				break
			}
			hi := hexVal[data[q]]
			if hi < 0 {
				break
			}
			if q+1 >= len(data) {
				mask |= s.hi[hi]
				if data[q] == '2' {
					mask = ^uint64(0) // %25 may come before any escape
				}
				break
			}
			if lo := hexVal[data[q+1]]; lo >= 0 {
				mask |= s.first[byte(hi)<<4|byte(lo)]
			}
			if data[q] != '2' || data[q+1] != '5' {
				break
			}
		}
	case '\\':
		if j > 0 && data[j-1] == '\\' {
			// Inside a run of backslashes: the escape begun at its
			// first one (which slides along it) covers this one.
			break
		}
		// What follows a run of backslashes (one escape, escaped again)
		// says which escape it is.
		k := j + 1
		for k < len(data) && data[k] == '\\' && k-j < maxBackslashes {
			k++
		}
		switch {
		case k == len(data) || data[k] == '\\':
			mask = ^uint64(0)
		case data[k] == 'u':
			mask = s.ascii // until \u00HH is all there
			if k+4 < len(data) {
				mask = 0
				if hi, lo := hexVal[data[k+3]], hexVal[data[k+4]]; data[k+1] == '0' && data[k+2] == '0' && hi >= 0 && lo >= 0 && hi < 8 {
					mask = s.first[byte(hi)<<4|byte(lo)]
				}
			}
		default:
			if e := shortEscape[data[k]]; e >= 0 {
				mask = s.first[e]
			}
		}
		if next == '\\' {
			mask |= s.first['\\'] // `\\` is also an escaped '\'
		}
	}
	if len(s.pats) > 64 {
		return mask | s.first[c]
	}
	// Of the patterns that begin with c itself, those whose second byte
	// fits next.
	for m := s.first[c]; m != 0; m &= m - 1 {
		p := &s.pats[bits.TrailingZeros64(m)]
		if len(p.b) == 1 || next == '%' || next == '\\' || next == p.b[1] || p.fold && next == upperHex(p.b[1]) {
			mask |= m & -m
		}
	}
	return mask
}

// spawnAll returns the patterns a match of which can begin with c, when
// the byte after it is not known yet.
func (s *Secrets) spawnAll(c byte) uint64 {
	if c == '%' || c == '\\' {
		return ^uint64(0)
	}
	return s.first[c]
}

func upperHex(c byte) byte {
	if c >= 'a' && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

// String keeps the secrets out of logs and error messages.
func (*Secrets) String() string { return Redacted }

// LogValue keeps the secrets out of structured logs.
func (*Secrets) LogValue() slog.Value { return slog.StringValue(Redacted) }

// Redactor returns a redactor for one stream.
func (s *Secrets) Redactor() *Redactor { return &Redactor{s: s} }

// Reset makes r what s.Redactor() returns, for a caller that keeps its
// redactor in a struct of its own.
func (r *Redactor) Reset(s *Secrets) { *r = Redactor{s: s} }

// RedactString replaces every form of the secrets in str; str itself comes
// back when there is none, without a copy.
func (s *Secrets) RedactString(str string) string {
	if len(s.pats) == 0 {
		return str
	}
	var m matching
	scan(s, &m, str, 0)
	if len(m.spans) == 0 {
		return str
	}
	return string(render(&m, nil, str, len(str)))
}

// RedactString replaces every form of the secrets in str (see Secrets).
// Code that redacts many strings with the same secrets should compile
// them once with NewSecrets.
func RedactString(str string, secrets ...string) string {
	return NewSecrets(secrets...).RedactString(str)
}

// Redactor replaces every form of its secrets (see Secrets) in a stream of
// chunks with [redacted]: each maximal run of bytes that belong to some
// match becomes one [redacted]. It holds back only bytes that could still
// become part of a match, so a chunk that ends an SSE event (a newline,
// which no key, hex or base64 contains) is passed on whole and at once.
// It keeps its state between chunks instead of scanning held bytes again.
type Redactor struct {
	s       *Secrets
	m       matching
	pending []byte // bytes held back, not yet emitted
	out     []byte
}

// NewRedactor returns a redactor for secrets; with no non-empty secret it
// passes everything through.
func NewRedactor(secrets ...string) *Redactor { return NewSecrets(secrets...).Redactor() }

// Process returns the bytes of p (after any held back before) that are safe
// to emit now. The returned slice is valid until the next call; p itself
// is never changed.
func (r *Redactor) Process(p []byte) []byte {
	if len(r.s.pats) == 0 {
		return p
	}
	held := len(r.pending)
	scan(r.s, &r.m, p, held)
	end := held + len(p)
	hold := end // where the bytes still held start
	for _, t := range r.m.threads {
		hold = min(hold, t.start)
	}
	if held == 0 && len(r.m.spans) == 0 && !r.m.joined {
		// The common case: nothing held, nothing matched; no copy.
		r.keep(p, hold, 0)
		return p[:hold]
	}
	data := p
	if held > 0 {
		r.pending = append(r.pending, p...)
		data = r.pending
	}
	r.out = render(&r.m, r.out[:0], data, hold)
	r.keep(data, hold, held)
	return r.out
}

// keep holds back data[hold:] (data begins with the held bytes, of which
// there were held) and makes hold position 0 of the matching state.
func (r *Redactor) keep(data []byte, hold, held int) {
	if held > 0 {
		n := copy(r.pending, r.pending[hold:])
		r.pending = r.pending[:n]
	} else {
		r.pending = append(r.pending[:0], data[hold:]...)
	}
	r.m.rebase(hold)
}

// Flush returns what is held back at the end of the stream: a partial
// match is not a match, so it comes out as it was (with any whole match
// inside it redacted).
func (r *Redactor) Flush() []byte {
	if len(r.s.pats) == 0 {
		return nil
	}
	out := render(&r.m, r.out[:0], r.pending, len(r.pending))
	r.out = out
	r.pending = r.pending[:0]
	r.m = matching{threads: r.m.threads[:0], spare: r.m.spare}
	return out
}

// matching is the state of a scan: the partial matches still alive and
// the spans of the whole matches not yet emitted. Positions are relative
// to the first byte not yet emitted.
type matching struct {
	threads []thread
	spare   []thread // the other buffer of threads, reused by feed
	spans   []span
	// seen holds the states in next while feed makes more than maxScan
	// threads.
	seen map[uint64]struct{}
	// joined is true when the last output was a [redacted] that ended
	// at position 0: a span that starts there continues it.
	joined bool
}

// thread is a partial match of pattern pat that began at start and has
// matched i of its bytes, plus the escape it is in the middle of (esc).
type thread struct {
	start int
	pat   int32
	i     int32
	esc   uint8
	// nest counts the extra backslashes of the escape read so far, or
	// its %25s: how many times its introducer was escaped again.
	nest uint8
}

// Bounds of nesting: a backslash run of up to 16 (a JSON escape in JSON
// strings four deep), up to 4 %25s. They keep what an upstream can make
// the redactor hold back bounded: a match is at most 21 bytes per byte
// of its form.
const (
	maxBackslashes = 16
	maxPct25       = 4
)

// Escape states: what of an escape a thread has read.
const (
	escNone   = iota
	escPct    // %
	escPctHi  // %X
	escBslash // \
	escU      // \u
	escU0     // \u0
	escU00    // \u00
	escU00Hi  // \u00X
	escPct2   // %2, which may be the start of %25: an escaped '%'
)

type span struct{ from, to int }

var hexVal = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = int8(c - 'a' + 10)
		t[c-'a'+'A'] = int8(c - 'a' + 10)
	}
	return t
}()

// shortEscape maps the letter after a backslash to the byte it stands for.
var shortEscape = func() (t [256]int16) {
	for i := range t {
		t[i] = -1
	}
	for k, v := range map[byte]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'} {
		t[k] = int16(v)
	}
	return t
}()

// scan feeds data, which begins at position base, through the matching
// state.
func scan[S ~string | ~[]byte](s *Secrets, m *matching, data S, base int) {
	n := len(data)
	for j := 0; j < n; j++ {
		if len(m.threads) == 0 {
			// Nothing in progress: skip to the next pair of bytes a
			// match can begin with.
			for {
				j = skip(s, data, j)
				if j == n {
					return
				}
				if j+1 == n {
					m.feed(s, data[j], base+j, s.spawnAll(data[j]))
					return
				}
				if mask := spawnMask(s, data, j); mask != 0 {
					m.feed(s, data[j], base+j, mask)
					break
				}
				j++
			}
			continue
		}
		c := data[j]
		var mask uint64
		if s.start[c] != 0 {
			mask = spawnMask(s, data, j)
		}
		m.feed(s, c, base+j, mask)
		if c == '\\' && s.plainRuns && len(m.threads) > 0 {
			// The rest of a run of backslashes moves every thread the
			// same way: take it at once.
			r := 0
			for j+1+r < n && data[j+1+r] == '\\' {
				r++
			}
			if r > 0 {
				m.backslashes(r)
				j += r
			}
		}
	}
}

// backslashes moves the threads on by r more backslashes of a run that
// began before them, when no pattern holds a backslash (so none matches
// one plainly, and none starts inside the run): each that reads an
// escape's run goes on reading it, and every other one ends.
func (m *matching) backslashes(r int) {
	next := m.spare[:0]
	for _, t := range m.threads {
		if t.esc != escBslash {
			continue
		}
		read := int(t.nest) + 1 + r
		switch {
		case read <= maxBackslashes:
			t.nest = uint8(read - 1)
		case t.i == 0:
			t.nest = maxBackslashes - 1
			t.start += read - maxBackslashes
		default:
			continue
		}
		next = m.keepThread(next, t)
	}
	m.spare, m.threads = m.threads[:0], next
}

// skip returns the index of the first byte of data from j on that start
// marks, or len(data). It is the loop almost every byte goes through.
func skip[S ~string | ~[]byte](s *Secrets, data S, j int) int {
	start := &s.start
	for {
		// Eight bytes a step, one branch for all: most text has no byte
		// a match can begin with for many steps.
		for ; j+8 <= len(data); j += 8 {
			d := data[j : j+8]
			if start[d[0]]|start[d[1]]|start[d[2]]|start[d[3]]|start[d[4]]|start[d[5]]|start[d[6]]|start[d[7]] != 0 {
				break
			}
		}
		for ; j < len(data); j++ {
			if start[data[j]] != 0 {
				break
			}
		}
		if j+1 >= len(data) {
			return j
		}
		// Most such bytes are letters of text that the next byte rules
		// out ("s" not followed by "k").
		if c, next := data[j], data[j+1]; s.pair[c][next/64]&(1<<(next%64)) != 0 {
			return j
		}
		j++
	}
}

// feed moves every live thread on by c, at pos, and starts a thread of
// each pattern in spawn. Threads stay ordered by start, and of two in the
// same state only the earlier is kept: its match would cover the other's.
func (m *matching) feed(s *Secrets, c byte, pos int, spawn uint64) {
	if len(m.threads) == 0 && spawn == 0 {
		return
	}
	next := m.spare[:0]
	for _, t := range m.threads {
		next = m.step(s, t, c, pos, next)
	}
	if spawn != 0 {
		for k := range s.pats {
			if spawn&(1<<(k&63)) != 0 {
				next = m.step(s, thread{start: pos, pat: int32(k)}, c, pos, next)
			}
		}
	}
	m.spare, m.threads = m.threads[:0], next
}

// step moves t on by c, at pos, and appends what becomes of it to next:
// nothing when c does not fit, a span when t completes its match, and two
// threads when c is the pattern's own '%' or '\' and may also begin an
// escape.
func (m *matching) step(s *Secrets, t thread, c byte, pos int, next []thread) []thread {
	p := &s.pats[t.pat]
	want := p.b[t.i]
	switch t.esc {
	case escNone:
		raw := c == want || p.fold && c == upperHex(want)
		if c == '%' || c == '\\' {
			e := t
			e.esc = escPct
			if c == '\\' {
				e.esc = escBslash
			}
			next = m.keepThread(next, e)
		}
		if !raw {
			return next
		}
	case escPct, escU00:
		if t.esc == escPct && c == '2' {
			// %25 is '%' percent-encoded again: %2573 is %73 in a URL
			// that was itself percent-encoded.
			if t.nest < maxPct25 {
				e := t
				e.esc = escPct2
				next = m.keepThread(next, e)
			}
		}
		v := hexVal[c]
		if v < 0 || byte(v) != want>>4 && !(p.fold && byte(v) == upperHex(want)>>4) {
			return next
		}
		t.esc++
		return m.keepThread(next, t)
	case escPctHi, escU00Hi:
		if hexVal[c] != int8(want&0xf) {
			return next
		}
	case escPct2:
		if c != '5' {
			return next
		}
		t.esc = escPct
		t.nest++
		return m.keepThread(next, t)
	case escBslash:
		if c == '\\' {
			// A run of backslashes is one, escaped again by each JSON
			// string the text was put in: \\u0073 is \u0073 inside a
			// JSON document that is itself a JSON string.
			e := t
			switch {
			case e.nest+1 < maxBackslashes:
				e.nest++
				next = m.keepThread(next, e)
			case e.i == 0:
				// A match may begin anywhere in the run, as long as
				// no more than maxBackslashes come before the escape:
				// slide over the run.
				e.start++
				next = m.keepThread(next, e)
			}
		}
		if c == 'u' && want < 0x80 {
			t.esc = escU
			return m.keepThread(next, t)
		}
		if shortEscape[c] != int16(want) {
			return next
		}
	case escU, escU0:
		if c != '0' {
			return next
		}
		t.esc++
		return m.keepThread(next, t)
	}
	// c completed the encoding of want.
	t.i++
	t.esc = escNone
	t.nest = 0
	if int(t.i) == len(p.b) {
		m.spans = append(m.spans, span{t.start, pos + 1})
		return next
	}
	return m.keepThread(next, t)
}

// keepThread appends t to next unless a thread in the same state is there
// already. At the first byte of a match, threads in a backslash run differ
// only in where they began: the earliest, which slides over the run,
// covers the others.
func (m *matching) keepThread(next []thread, t thread) []thread {
	if len(next) < maxScan {
		for _, o := range next {
			if o.state() == t.state() {
				return next
			}
		}
		return append(next, t)
	}
	// Many threads (a secret made of one repeated byte, in a run of it):
	// a set keeps this linear.
	if len(next) == maxScan || m.seen == nil {
		if m.seen == nil {
			m.seen = map[uint64]struct{}{}
		}
		clear(m.seen)
		for _, o := range next {
			m.seen[o.state()] = struct{}{}
		}
	}
	if _, ok := m.seen[t.state()]; ok {
		return next
	}
	m.seen[t.state()] = struct{}{}
	return append(next, t)
}

// maxScan is how many threads keepThread compares one by one.
const maxScan = 32

// state is what two threads must share to be the same but for where they
// began.
func (t thread) state() uint64 {
	nest := uint64(t.nest)
	if t.i == 0 {
		nest = 0xff
	}
	return uint64(t.pat)<<40 | uint64(uint32(t.i))<<16 | uint64(t.esc)<<8 | nest
}

// render appends data[:hold] to out with each run of matched bytes
// replaced by one [redacted], and consumes the spans it rendered. A span
// that runs past hold (a whole match that a partial one, begun earlier,
// overlaps) is rendered up to hold and the rest kept, joined to the
// [redacted] already written.
func render[S ~string | ~[]byte](m *matching, out []byte, data S, hold int) []byte {
	sortSpans(m.spans)
	pos := 0
	kept := m.spans[:0]
	for _, sp := range m.spans {
		if sp.from >= hold {
			kept = append(kept, sp)
			continue
		}
		if sp.from > pos {
			out = append(out, data[pos:sp.from]...)
			m.joined = false
		}
		if !m.joined {
			out = append(out, Redacted...)
			m.joined = true
		}
		if sp.to > hold {
			kept = append(kept, span{hold, sp.to})
		}
		pos = max(pos, min(sp.to, hold))
	}
	if pos < hold {
		out = append(out, data[pos:hold]...)
		m.joined = false
	}
	m.spans = kept
	return out
}

// sortSpans orders spans by start; there are rarely more than one.
func sortSpans(s []span) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].from < s[j-1].from; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// rebase moves positions so that hold becomes 0.
func (m *matching) rebase(hold int) {
	for i := range m.threads {
		m.threads[i].start -= hold
	}
	for i := range m.spans {
		m.spans[i].from -= hold
		m.spans[i].to -= hold
	}
}
