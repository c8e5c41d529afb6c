package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// benchKey has the shape and length of an Anthropic key (108 bytes).
var benchKey = "sk-ant-api03-" + strings.Repeat("Xq7-bR2_kP9zL4mN8vT1wY6c", 4)[:95]

// benchEvents is an Anthropic stream as a provider sends it: one SSE event
// per write, text deltas of prose and code (JSON-escaped newlines and
// quotes included), a few KiB in all.
func benchEvents() [][]byte {
	rng := rand.New(rand.NewPCG(7, 11))
	words := []string{"the", "proxy", "reads", "every", "byte", "so", "a", "key", "echoed", "by", "an", "upstream",
		"never", "reaches", "agent", "func", "main()", "{", "}", "return", "err", "if", "nil", "x := 42", "\"quoted\"", "path/to/file.go",
		"100%", "C:\\temp", "https://example.com/a?b=c&d=e", "base64==", "sk-", "0x7f", "café"}
	var events [][]byte
	for range 60 {
		var text strings.Builder
		for range 4 + rng.IntN(8) {
			text.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(6) == 0 {
				text.WriteString("\n")
			} else {
				text.WriteString(" ")
			}
		}
		data, _ := json.Marshal(map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]any{"type": "text_delta", "text": text.String()}})
		events = append(events, fmt.Appendf(nil, "event: content_block_delta\ndata: %s\n\n", data))
	}
	return events
}

// BenchmarkRedactor measures the redactor as the proxy uses it: the key's
// forms compiled once per session, a new redactor per answer, fed a
// stream event by event (sse), or a plain answer read whole (json-32KiB),
// and the check of a response header value. Each has a baseline beside
// it: bytes.Index of the raw key over the same chunks, the least any
// redactor does (and about what one that matched only the raw key did).
func BenchmarkRedactor(b *testing.B) {
	sec := NewSecrets(benchKey)
	key := []byte(benchKey)
	events := benchEvents()
	var total int
	for _, e := range events {
		total += len(e)
	}
	whole := bytes.Repeat(bytes.Join(events, nil), (32<<10)/total+1)[:32<<10]
	for _, tc := range []struct {
		name   string
		chunks [][]byte
	}{{"sse", events}, {"json-32KiB", [][]byte{whole}}} {
		n := 0
		for _, c := range tc.chunks {
			n += len(c)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				r := sec.Redactor()
				for _, c := range tc.chunks {
					r.Process(c)
				}
				r.Flush()
			}
		})
		b.Run(tc.name+"/baseline", func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				for _, c := range tc.chunks {
					if bytes.Index(c, key) >= 0 {
						b.Fatal("the benchmark's text holds the key")
					}
				}
			}
		})
	}
	b.Run("header", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sec.RedactString("req_011CZx7fQwEvW3n5Fh9tYb2K")
		}
	})
}

// BenchmarkNewSecrets is the cost of compiling a key's forms, once per
// session in the proxy.
func BenchmarkNewSecrets(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewSecrets(benchKey)
	}
}

// BenchmarkRedactorFlood is what an upstream that sends the worst text
// it can costs: runs that keep escapes open, or the key's beginning
// escaped over and over.
func BenchmarkRedactorFlood(b *testing.B) {
	sec := NewSecrets(benchKey)
	for name, unit := range map[string]string{
		"backslashes":  `\`,
		"percent-25":   "%25",
		"escaped-head": `\u0073\u006b\u002d\u0061\u006e`,
		"hex-head":     "736b2d616e742d617069",
	} {
		chunk := []byte(strings.Repeat(unit, (32<<10)/len(unit)))
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			for b.Loop() {
				r := sec.Redactor()
				r.Process(chunk)
				r.Flush()
			}
		})
	}
}
