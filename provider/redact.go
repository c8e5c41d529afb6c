package provider

import "bytes"

// Redacted replaces a secret that an upstream echoed back.
const Redacted = "[redacted]"

// Redactor replaces every occurrence of a secret in a stream of chunks
// with [redacted]. It holds back only a tail that could be the start of the
// secret, so a chunk that ends an SSE event (a newline, which no key
// contains) is passed on whole and at once.
type Redactor struct {
	secret  []byte
	pending []byte
}

// NewRedactor returns a redactor for secret; an empty secret passes
// everything through.
func NewRedactor(secret string) *Redactor { return &Redactor{secret: []byte(secret)} }

// Process returns the bytes of p (after any held back before) that are safe
// to emit now. The returned slice is valid until the next call.
func (r *Redactor) Process(p []byte) []byte {
	if len(r.secret) == 0 {
		return p
	}
	data := p
	if len(r.pending) > 0 {
		data = append(r.pending, p...)
		r.pending = nil
	}
	var out []byte
	for {
		i := bytes.Index(data, r.secret)
		if i < 0 {
			break
		}
		out = append(out, data[:i]...)
		out = append(out, Redacted...)
		data = data[i+len(r.secret):]
	}
	hold := r.heldTail(data)
	if hold > 0 {
		r.pending = append([]byte(nil), data[len(data)-hold:]...)
		data = data[:len(data)-hold]
	}
	if out == nil {
		return data
	}
	return append(out, data...)
}

// Flush returns what is held back at the end of the stream: a partial
// secret is not the secret.
func (r *Redactor) Flush() []byte {
	p := r.pending
	r.pending = nil
	return p
}

// heldTail is the length of the longest suffix of data that is a proper
// prefix of the secret.
func (r *Redactor) heldTail(data []byte) int {
	max := min(len(r.secret)-1, len(data))
	for n := max; n > 0; n-- {
		if bytes.Equal(data[len(data)-n:], r.secret[:n]) {
			return n
		}
	}
	return 0
}

// RedactString replaces every occurrence of secret in s.
func RedactString(s, secret string) string {
	if secret == "" {
		return s
	}
	return string(bytes.ReplaceAll([]byte(s), []byte(secret), []byte(Redacted)))
}
