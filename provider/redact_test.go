package provider

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// redact runs chunks through a new redactor for secret and returns the
// concatenated output, copying each result before the next call as a
// caller must.
func redact(secret string, chunks ...string) string {
	r := NewRedactor(secret)
	var out bytes.Buffer
	for _, c := range chunks {
		out.Write(r.Process([]byte(c)))
	}
	out.Write(r.Flush())
	return out.String()
}

func TestRedactorSplits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, secret, input string
	}{
		{"key in an SSE event", "sk-ant-api03-SECRETvalue", "data: {\"echo\":\"sk-ant-api03-SECRETvalue\"}\n\n"},
		{"key twice", "sk-proj-abc123", "sk-proj-abc123 and sk-proj-abc123"},
		{"key after a false start", "sk-abc", "sk-ab sk-sk-abc sk-a"},
		{"whole input is the key", "sk-only", "sk-only"},
		{"no key", "sk-abc", "data: {\"text\":\"nothing here\"}\n\n"},
		{"one-byte secret", "k", "keep kk k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := strings.ReplaceAll(tt.input, tt.secret, Redacted)
			in := tt.input
			for i := 0; i <= len(in); i++ {
				if got := redact(tt.secret, in[:i], in[i:]); got != want {
					t.Fatalf("split at %d: got %q, want %q", i, got, want)
				}
				for j := i; j <= len(in); j++ {
					got := redact(tt.secret, in[:i], in[i:j], in[j:])
					if got != want {
						t.Fatalf("split at %d and %d: got %q, want %q", i, j, got, want)
					}
					if strings.Contains(got, tt.secret) {
						t.Fatalf("split at %d and %d: output %q contains the secret", i, j, got)
					}
				}
			}
			if got := redact(tt.secret, byteByByteStrings(in)...); got != want {
				t.Fatalf("byte by byte: got %q, want %q", got, want)
			}
		})
	}
}

func byteByByteStrings(s string) []string {
	out := make([]string, len(s))
	for i := range len(s) {
		out[i] = s[i : i+1]
	}
	return out
}

// TestRedactorEventBoundary checks that nothing is held back from a chunk
// that ends an SSE event: the client sees each event as soon as it
// arrives.
func TestRedactorEventBoundary(t *testing.T) {
	t.Parallel()
	const secret = "sk-ant-xyz"
	tests := []struct {
		name    string
		chunks  []string
		outputs []string // what each Process call must return
	}{
		{
			"plain event",
			[]string{"data: {\"type\":\"ping\"}\n\n"},
			[]string{"data: {\"type\":\"ping\"}\n\n"},
		},
		{
			"event with the key",
			[]string{"data: {\"k\":\"sk-ant-xyz\"}\n\n"},
			[]string{"data: {\"k\":\"[redacted]\"}\n\n"},
		},
		{
			"held prefix released by the event end",
			[]string{"data: sk-an", "t-xy\n\n", "data: sk-ant", "-x\n\n"},
			[]string{"data: ", "sk-ant-xy\n\n", "data: ", "sk-ant-x\n\n"},
		},
		{
			"key completed by the event end",
			[]string{"data: sk-ant-x", "yz\n\n"},
			[]string{"data: ", "[redacted]\n\n"},
		},
		{
			"event ending in a prefix is held",
			[]string{"data: a\n\nsk-"},
			[]string{"data: a\n\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewRedactor(secret)
			for i, c := range tt.chunks {
				if got := string(r.Process([]byte(c))); got != tt.outputs[i] {
					t.Fatalf("Process(%q): got %q, want %q", c, got, tt.outputs[i])
				}
			}
			last := tt.chunks[len(tt.chunks)-1]
			wantFlush := ""
			if !strings.HasSuffix(last, "\n\n") {
				wantFlush = "sk-"
			}
			if got := string(r.Flush()); got != wantFlush {
				t.Fatalf("Flush: got %q, want %q", got, wantFlush)
			}
		})
	}
}

// TestRedactorFlushPartial checks that a proper prefix of the secret at the
// end of the stream is not the secret and comes out of Flush unchanged.
func TestRedactorFlushPartial(t *testing.T) {
	t.Parallel()
	const secret = "sk-ant-secret"
	for n := 1; n < len(secret); n++ {
		r := NewRedactor(secret)
		in := "tail: " + secret[:n]
		got := string(r.Process([]byte(in)))
		if got != "tail: " {
			t.Fatalf("Process(%q): got %q, want %q", in, got, "tail: ")
		}
		if got := string(r.Flush()); got != secret[:n] {
			t.Fatalf("Flush after %q: got %q, want %q", in, got, secret[:n])
		}
		if got := r.Flush(); len(got) != 0 {
			t.Fatalf("second Flush: got %q, want nothing", got)
		}
	}
}

func TestRedactorOverlapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		secret, input, want string
	}{
		{"kk", "kkk", "[redacted]k"},
		{"kk", "kkkk", "[redacted][redacted]"},
		{"kkk", "kkkkk", "[redacted]kk"},
		{"abab", "abababab", "[redacted][redacted]"},
		{"abab", "ababab", "[redacted]ab"},
		{"aab", "aaab", "a[redacted]"},
		{"aab", "aaaaab", "aaa[redacted]"},
		{"abcab", "abcabcab", "[redacted]cab"},
		{"aa", "aaaaa", "[redacted][redacted]a"},
	}
	for _, tt := range tests {
		t.Run(tt.secret+"/"+tt.input, func(t *testing.T) {
			t.Parallel()
			if want := strings.ReplaceAll(tt.input, tt.secret, Redacted); want != tt.want {
				t.Fatalf("table is wrong: strings.ReplaceAll gives %q, table says %q", want, tt.want)
			}
			in := tt.input
			if got := redact(tt.secret, in); got != tt.want {
				t.Fatalf("one chunk: got %q, want %q", got, tt.want)
			}
			if got := redact(tt.secret, byteByByteStrings(in)...); got != tt.want {
				t.Fatalf("byte by byte: got %q, want %q", got, tt.want)
			}
			for i := 0; i <= len(in); i++ {
				for j := i; j <= len(in); j++ {
					if got := redact(tt.secret, in[:i], in[i:j], in[j:]); got != tt.want {
						t.Fatalf("split at %d and %d: got %q, want %q", i, j, got, tt.want)
					}
				}
			}
		})
	}
}

func TestRedactorEmptySecret(t *testing.T) {
	t.Parallel()
	r := NewRedactor("")
	for _, c := range []string{"data: x\n\n", "", "sk-", "[redacted]"} {
		in := []byte(c)
		if got := r.Process(in); !bytes.Equal(got, in) {
			t.Fatalf("Process(%q): got %q, want it unchanged", c, got)
		}
	}
	if got := r.Flush(); len(got) != 0 {
		t.Fatalf("Flush: got %q, want nothing", got)
	}
}

func TestRedactorLeavesInputAlone(t *testing.T) {
	t.Parallel()
	r := NewRedactor("sk-abc")
	for _, c := range []string{"x sk-a", "bc y sk-", "abc sk-abc", "sk"} {
		in := []byte(c)
		r.Process(in)
		if string(in) != c {
			t.Fatalf("Process changed its input: got %q, want %q", in, c)
		}
	}
}

// TestRedactorRandom runs random inputs drawn from the secret's own bytes
// (so occurrences, partial ones and overlaps are common) through random
// chunkings.
func TestRedactorRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	secrets := []string{"sk-ant-api03-x", "abab", "kkk", "k-k", "sk-sk-1"}
	for range 5000 {
		secret := secrets[rng.IntN(len(secrets))]
		alphabet := secret + "\n"
		b := make([]byte, rng.IntN(60))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		in := string(b)
		var chunks []string
		for rest := in; len(rest) > 0; {
			n := min(len(rest), rng.IntN(len(secret)+3))
			chunks, rest = append(chunks, rest[:n]), rest[n:]
		}
		got := redact(secret, chunks...)
		if want := strings.ReplaceAll(in, secret, Redacted); got != want {
			t.Fatalf("secret %q, chunks %q: got %q, want %q", secret, chunks, got, want)
		}
		// None of these secrets shares a byte with "[redacted]", so no
		// occurrence can form across a replacement.
		if strings.Contains(got, secret) {
			t.Fatalf("secret %q, chunks %q: output %q contains the secret", secret, chunks, got)
		}
	}
}

func TestRedactString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s, secret, want string
	}{
		{"Authorization: Bearer sk-1", "sk-1", "Authorization: Bearer [redacted]"},
		{"sk-1sk-1", "sk-1", "[redacted][redacted]"},
		{"nothing", "sk-1", "nothing"},
		{"sk-1", "", "sk-1"},
		{"", "sk-1", ""},
	}
	for _, tt := range tests {
		if got := RedactString(tt.s, tt.secret); got != tt.want {
			t.Errorf("RedactString(%q, %q): got %q, want %q", tt.s, tt.secret, got, tt.want)
		}
	}
}

// FuzzRedactor checks the strongest property: for any input, any
// non-empty secret without a newline and any chunking, the concatenated
// output equals strings.ReplaceAll(input, secret, "[redacted]").
// Overlapping occurrences are not ambiguous here: like ReplaceAll, the
// redactor replaces the leftmost occurrence and resumes after it, and the
// tail it holds back (the longest suffix that is a proper prefix of the
// secret) is exactly where the next leftmost occurrence can start, so the
// equality holds for every chunking. When the secret shares no byte with
// "[redacted]", the output also never contains the secret; with a byte in
// common a replacement can legitimately combine with its neighbours into
// the secret (secret "d]x", input "d]xx"), which ReplaceAll does too.
//
// cuts gives the chunk lengths (each byte mod 17, zero-length chunks
// included); what is left after the cuts is the last chunk.
func FuzzRedactor(f *testing.F) {
	f.Fuzz(func(t *testing.T, input []byte, secret string, cuts []byte) {
		if secret == "" || strings.ContainsAny(secret, "\n") {
			return
		}
		orig := bytes.Clone(input)
		r := NewRedactor(secret)
		var out []byte
		rest := input
		for _, c := range cuts {
			n := min(int(c%17), len(rest))
			got := r.Process(rest[:n])
			if n > 0 && bytes.HasSuffix(rest[:n], []byte("\n")) && len(r.pending) != 0 {
				t.Fatalf("a chunk ending in a newline left %q held back", r.pending)
			}
			out = append(out, got...)
			rest = rest[n:]
		}
		out = append(out, r.Process(rest)...)
		out = append(out, r.Flush()...)
		if !bytes.Equal(input, orig) {
			t.Fatalf("the redactor changed its input")
		}
		want := strings.ReplaceAll(string(input), secret, Redacted)
		if string(out) != want {
			t.Fatalf("secret %q, cuts %v: got %q, want %q", secret, cuts, out, want)
		}
		if !strings.ContainsAny(secret, Redacted) && bytes.Contains(out, []byte(secret)) {
			t.Fatalf("secret %q: output %q contains it", secret, out)
		}
		if !strings.Contains(string(input), secret) && !bytes.Equal(out, input) {
			t.Fatalf("secret %q absent: got %q, want the input %q unchanged", secret, out, input)
		}
	})
}
