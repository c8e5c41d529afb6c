package provider

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
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

// --- The reference: what the redactor must do, written the slow way. ---

// refForms are the forms of secret that Secrets documents, each with
// whether its hex letters match either case.
func refForms(secret string) (forms []string, fold []bool) {
	forms, fold = []string{secret}, []bool{false}
	if len(secret) < MinEncodedLen {
		return forms, fold
	}
	forms, fold = append(forms, hex.EncodeToString([]byte(secret))), append(fold, true)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for k := range 3 {
			full := enc.EncodeToString(append(make([]byte, k), secret...))
			forms = append(forms, string(base64Core([]byte(full), k, len(secret))))
			fold = append(fold, false)
		}
	}
	return forms, fold
}

// ref is the reference matcher: it tries, by brute force, every way the
// Secrets doc says each byte of each form may be written.
type ref struct {
	forms []string
	fold  []bool
}

// refFor is the reference matcher for secrets.
func refFor(secrets ...string) *ref {
	r := &ref{}
	for _, s := range secrets {
		forms, fold := refForms(s)
		r.forms, r.fold = append(r.forms, forms...), append(r.fold, fold...)
	}
	return r
}

// longest returns the end of the longest match that begins at i, or -1.
func (r *ref) longest(in string, i int) int {
	best := -1
	for f, form := range r.forms {
		if len(refUnitEnds(in, i, form[0], r.fold[f])) == 0 {
			continue // most starts: no need for the walk's memory
		}
		seen := map[[2]int]bool{}
		var walk func(k, p int)
		walk = func(k, p int) {
			if k == len(form) {
				best = max(best, p)
				return
			}
			if seen[[2]int{k, p}] {
				return
			}
			seen[[2]int{k, p}] = true
			for _, q := range refUnitEnds(in, p, form[k], r.fold[f]) {
				walk(k+1, q)
			}
		}
		walk(0, i)
	}
	return best
}

// refUnitEnds lists where a way of writing byte c that begins at in[p]
// ends: c itself; %XX after up to four %25s; \u00XX (c ASCII) or c's
// short JSON escape after a run of 1 to 16 backslashes; the hex digits in
// either case, and with fold a hex letter in either case.
func refUnitEnds(in string, p int, c byte, fold bool) []int {
	vals := []byte{c}
	if fold && c >= 'a' && c <= 'f' {
		vals = append(vals, c-'a'+'A')
	}
	hexAt := func(q int, v byte) bool {
		return q+1 < len(in) && hexDigit(in[q]) == int(v>>4) && hexDigit(in[q+1]) == int(v&15)
	}
	short := map[byte]byte{'"': '"', '\\': '\\', '/': '/', '\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't'}
	var ends []int
	for _, v := range vals {
		if p >= len(in) {
			break
		}
		if in[p] == v {
			ends = append(ends, p+1)
		}
		if in[p] == '%' {
			for q, n := p+1, 0; n <= 4; q, n = q+2, n+1 {
				if hexAt(q, v) {
					ends = append(ends, q+2)
				}
				if !strings.HasPrefix(in[q:], "25") {
					break
				}
			}
		}
		for run := 1; run <= 16 && p+run <= len(in) && in[p+run-1] == '\\'; run++ {
			q := p + run
			if v < 0x80 && strings.HasPrefix(in[q:], "u00") && hexAt(q+3, v) {
				ends = append(ends, q+5)
			}
			if e, ok := short[v]; ok && q < len(in) && in[q] == e {
				ends = append(ends, q+1)
			}
		}
	}
	return ends
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// refRedact is what the redactor must output: each maximal run of bytes
// that lie in some match, at any position, becomes one [redacted].
func refRedact(r *ref, input string) string {
	covered := make([]bool, len(input))
	for i := 0; i < len(input); i++ { // bytes, not runes
		for j, end := i, r.longest(input, i); j < end; j++ {
			covered[j] = true
		}
	}
	var out strings.Builder
	for i := 0; i < len(input); i++ {
		if !covered[i] {
			out.WriteByte(input[i])
			continue
		}
		out.WriteString(Redacted)
		for i+1 < len(input) && covered[i+1] {
			i++
		}
	}
	return out.String()
}

// refLeak returns a match left in out once its [redacted] markers are
// taken out, or "".
func refLeak(r *ref, out string) string {
	n := strings.ReplaceAll(out, Redacted, "\x00")
	for i := 0; i < len(n); i++ {
		if e := r.longest(n, i); e > i {
			return n[i:e]
		}
	}
	return ""
}

// --- Encodings a careless upstream might use. ---

// escapeEach writes each byte of s as choose says: 0 itself, 1 %XX,
// 2 %xx, 3 \u00XX, 4 \u00xx, 5 \u00 with mixed-case digits, 6 its short
// JSON escape (itself when it has none), 7 \\u00xx (a \u escape inside a
// JSON string inside another), 8 %25XX (%XX in an encoded URL). \u00XX is
// only for ASCII.
func escapeEach(s string, choose func(i int, c byte) int) string {
	short := map[byte]string{'"': `\"`, '\\': `\\`, '/': `\/`, '\b': `\b`, '\f': `\f`, '\n': `\n`, '\r': `\r`, '\t': `\t`}
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		switch choose(i, c) % 9 {
		case 7:
			if c < 0x80 {
				fmt.Fprintf(&b, `\\u%04x`, c)
			} else {
				b.WriteByte(c)
			}
		case 8:
			fmt.Fprintf(&b, "%%25%02X", c)
		case 1:
			fmt.Fprintf(&b, "%%%02X", c)
		case 2:
			fmt.Fprintf(&b, "%%%02x", c)
		case 3, 4, 5:
			if c >= 0x80 {
				b.WriteByte(c)
				break
			}
			h := fmt.Sprintf("%02x", c)
			switch choose(i, c) % 9 {
			case 3:
				h = strings.ToUpper(h)
			case 5:
				h = strings.ToUpper(h[:1]) + h[1:]
			}
			b.WriteString(`\u00` + h)
		case 6:
			if e, ok := short[c]; ok {
				b.WriteString(e)
			} else {
				b.WriteByte(c)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func all(k int) func(int, byte) int { return func(int, byte) int { return k } }

// mixedCase upper-cases the letters of s at odd positions.
func mixedCase(s string) string {
	b := []byte(s)
	for i := 1; i < len(b); i += 2 {
		if b[i] >= 'a' && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

// testKey looks like an Anthropic key; its base64 has both '+' and '/'
// in the standard alphabet (checked below), so the URL alphabet differs.
const testKey = "sk-ant-api03-Zm9vYmFy~x9_Qq-7fK2pLw8Rt3Ns5Vb1Yh4Jc6Dg0Ue9Ia2Mo7Pl3Kj8Hf5Gd1Sa4Xw6Ez9Cr2Vt"

// encodedKeys is testKey written every way the redactor must catch, each
// inside the text an upstream would put it in.
func encodedKeys(t testing.TB) map[string]string {
	k := testKey
	b64 := func(enc *base64.Encoding, s string) string { return enc.EncodeToString([]byte(s)) }
	std := b64(base64.StdEncoding, "x-api-key: "+k)
	if !strings.ContainsAny(std, "+/") {
		t.Fatalf("the base64 of the test key has no '+' or '/'; pick another key")
	}
	return map[string]string{
		"raw":                       k,
		"json all \\u00xx":          escapeEach(k, all(4)),
		"json all \\u00XX":          escapeEach(k, all(3)),
		"json mixed-case digits":    escapeEach(k, all(5)),
		"json every other byte":     escapeEach(k, func(i int, _ byte) int { return 3 + i%2 }),
		"json only - and _ escaped": escapeEach(k, func(_ int, c byte) int { return map[bool]int{true: 4}[c == '-' || c == '_'] }),
		"url all %XX":               escapeEach(k, all(1)),
		"url all %xx":               escapeEach(k, all(2)),
		"url query escape":          url.QueryEscape(k),
		"url some bytes":            escapeEach(k, func(i int, _ byte) int { return []int{0, 1, 0, 2}[i%4] }),
		"url and json mixed":        escapeEach(k, func(i int, _ byte) int { return i % 6 }),
		"json in json":              escapeEach(k, all(7)),
		"json in json, some bytes":  escapeEach(k, func(i int, _ byte) int { return []int{0, 7, 0, 4}[i%4] }),
		"percent twice":             escapeEach(k, all(8)),
		"_ escaped three deep":      strings.ReplaceAll(k, "_", `\\\\u005f`),
		"hex":                       hex.EncodeToString([]byte(k)),
		"HEX":                       strings.ToUpper(hex.EncodeToString([]byte(k))),
		"hex mixed case":            mixedCase(hex.EncodeToString([]byte(k))),
		"hex in json, digits escaped": escapeEach(hex.EncodeToString([]byte(k)), func(i int, _ byte) int {
			return map[bool]int{true: 4}[i%5 == 0]
		}),
		"base64 std, offset 0":       b64(base64.StdEncoding, k),
		"base64 std, offset 1":       b64(base64.StdEncoding, "Bearer "+k),
		"base64 std, offset 2":       std,
		"base64 std raw, offset 1":   b64(base64.RawStdEncoding, "Bearer "+k+"x"),
		"base64 url, offset 0":       b64(base64.URLEncoding, k+"\n"),
		"base64 url raw, offset 1":   b64(base64.RawURLEncoding, "tok="+k),
		"base64 url raw, offset 2":   b64(base64.RawURLEncoding, "x-api-key: "+k),
		"base64 std, json-escaped /": strings.ReplaceAll(std, "/", `\/`),
		"base64 std, php-style":      escapeEach(std, func(_ int, c byte) int { return map[byte]int{'/': 6, '+': 4, '=': 3}[c] }),
		"base64 std in a url query":  url.QueryEscape(std),
		"base64 std, escaped +/ low": escapeEach(std, func(_ int, c byte) int { return map[byte]int{'/': 2, '+': 2}[c] }),
	}
}

// TestRedactorEncodings checks every encoding of a realistic key, in an
// answer split at every point and byte by byte: the output is what the
// reference says, holds no encoding of the key, and keeps the text around
// it.
func TestRedactorEncodings(t *testing.T) {
	t.Parallel()
	re := refFor(testKey)
	sec := NewSecrets(testKey)
	for name, enc := range encodedKeys(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := `data: {"type":"error","error":{"message":"key ` + enc + ` is not allowed"}}` + "\n\n"
			if leak := refLeak(re, in); leak == "" {
				t.Fatalf("the reference finds no key in %q", in)
			}
			want := refRedact(re, in)
			if strings.Count(want, Redacted) != 1 {
				t.Fatalf("reference output %q: want the key's place redacted", want)
			}
			if got := sec.RedactString(in); got != want {
				t.Fatalf("RedactString: got %q, want %q", got, want)
			}
			for i := 0; i <= len(in); i++ {
				if got := redact(testKey, in[:i], in[i:]); got != want {
					t.Fatalf("split at %d: got %q, want %q", i, got, want)
				}
			}
			if got := redact(testKey, byteByByteStrings(in)...); got != want {
				t.Fatalf("byte by byte: got %q, want %q", got, want)
			}
			if leak := refLeak(re, want); leak != "" {
				t.Fatalf("output %q still holds %q", want, leak)
			}
			if !strings.HasPrefix(want, `data: {"type":"error","error":{"message":"key `) || !strings.HasSuffix(want, " is not allowed\"}}\n\n") {
				t.Fatalf("output %q: want the text around the key kept", want)
			}
		})
	}
}

// TestBase64Core checks the claim the base64 forms rest on: the core of a
// secret appears in the base64 of any text that holds it, whatever comes
// before and after, in both alphabets, padded or not.
func TestBase64Core(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		secret := make([]byte, MinEncodedLen+rng.IntN(40))
		for i := range secret {
			secret[i] = byte(rng.IntN(256))
		}
		for before := range 7 {
			for after := range 4 {
				text := make([]byte, before+len(secret)+after)
				for i := range text {
					text[i] = byte(rng.IntN(256))
				}
				copy(text[before:], secret)
				for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
					full := enc.EncodeToString(append(make([]byte, before%3), secret...))
					core := base64Core([]byte(full), before%3, len(secret))
					if len(core) < (8*len(secret)-12)/6 {
						t.Fatalf("core of %d bytes at offset %d: got %d characters, want at least %d", len(secret), before%3, len(core), (8*len(secret)-12)/6)
					}
					if got := enc.EncodeToString(text); !strings.Contains(got, string(core)) {
						t.Fatalf("secret %x after %d bytes: base64 %q does not hold the core %q", secret, before, got, core)
					}
				}
			}
		}
	}
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
		{"escaped, false starts", "sk-proj-abc123", `\u0073k-\u0073\u006b-proj-abc123 %73k-proj-abc12 \u0073%6b-proj-abc123`},
		{"hex after a false start", "sk-proj-abc123", "736b2d 736b2d70726f6a2d616263313233 736b2d70726f6a2d61626331323"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			re := refFor(tt.secret)
			want := refRedact(re, tt.input)
			if strings.Contains(tt.input, tt.secret) && !strings.Contains(want, Redacted) {
				t.Fatalf("reference output %q: want the key redacted", want)
			}
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
			"escaped key completed by the event end",
			[]string{`data: "\u0073k-ant-x\u00`, "79z\"\n\n"},
			[]string{`data: "`, "[redacted]\"\n\n"},
		},
		{
			"hex key released by the event end",
			[]string{"data: 736b2d616e", "742d7879\n\n"},
			[]string{"data: ", "736b2d616e742d7879\n\n"},
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
	for _, form := range []string{secret, escapeEach(secret, all(4)), escapeEach(secret, all(1)), hex.EncodeToString([]byte(secret))} {
		for n := 1; n < len(form); n++ {
			r := NewRedactor(secret)
			in := "tail: " + form[:n]
			got := string(r.Process([]byte(in)))
			if got != "tail: " {
				t.Fatalf("Process(%q): got %q, want %q", in, got, "tail: ")
			}
			if got := string(r.Flush()); got != form[:n] {
				t.Fatalf("Flush after %q: got %q, want %q", in, got, form[:n])
			}
			if got := r.Flush(); len(got) != 0 {
				t.Fatalf("second Flush: got %q, want nothing", got)
			}
		}
	}
}

// TestRedactorOverlapping: overlapping and touching matches become one
// [redacted], so no part of any match is left.
func TestRedactorOverlapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		secret, input, want string
	}{
		{"kk", "kkk", "[redacted]"},
		{"kk", "kkkk", "[redacted]"},
		{"kkk", "kkkkk", "[redacted]"},
		{"abab", "abababab", "[redacted]"},
		{"abab", "ababab", "[redacted]"},
		{"abab", "abab abab", "[redacted] [redacted]"},
		{"aab", "aaab", "a[redacted]"},
		{"aab", "aaaaab", "aaa[redacted]"},
		{"abcab", "abcabcab", "[redacted]"},
		{"aa", "aaaaa", "[redacted]"},
		{"sk-1", "sk-1sk-1", "[redacted]"},
		{"sk-1", `sk-1\u0073k-1`, "[redacted]"},
		{"a%", "a%a%", "[redacted]"},
		{"a%", "a%25%61%25", "[redacted]"}, // a%25 is "a%" read raw and escaped, %61%25 is "a%"
		{`a\`, `a\\a\\`, "[redacted]"},     // a\\ is "a\" read raw and escaped
		{`a\`, `a\u005c`, "[redacted]"},
	}
	for _, tt := range tests {
		t.Run(tt.secret+"/"+tt.input, func(t *testing.T) {
			t.Parallel()
			if want := refRedact(refFor(tt.secret), tt.input); want != tt.want {
				t.Fatalf("table is wrong: the reference gives %q, table says %q", want, tt.want)
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
	for _, r := range []*Redactor{NewRedactor(""), NewRedactor(), NewRedactor("", "")} {
		for _, c := range []string{"data: x\n\n", "", "sk-", "[redacted]", `\u0073%73`} {
			in := []byte(c)
			if got := r.Process(in); !bytes.Equal(got, in) {
				t.Fatalf("Process(%q): got %q, want it unchanged", c, got)
			}
		}
		if got := r.Flush(); len(got) != 0 {
			t.Fatalf("Flush: got %q, want nothing", got)
		}
	}
}

func TestRedactorLeavesInputAlone(t *testing.T) {
	t.Parallel()
	r := NewRedactor("sk-abcdefgh")
	for _, c := range []string{"x sk-a", "bcdefgh y sk-", "abcdefgh sk-abc", `\u0073k-abcdefgh`, "sk"} {
		in := []byte(c)
		r.Process(in)
		if string(in) != c {
			t.Fatalf("Process changed its input: got %q, want %q", in, c)
		}
	}
}

// TestRedactorHoldBounded: an upstream cannot make the redactor hold back
// without bound by sending what keeps a match open: endless runs of
// backslashes or %25s, or the key's escaped beginning over and over.
func TestRedactorHoldBounded(t *testing.T) {
	t.Parallel()
	for name, unit := range map[string]string{
		"backslashes":      `\`,
		"percent 25s":      "%25",
		"escaped prefix":   escapeEach(testKey[:40], all(7)),
		"hex prefix":       hex.EncodeToString([]byte(testKey[:40])),
		"percent prefix":   escapeEach(testKey[:40], all(8)),
		"mixed introducer": `\\%25\`,
	} {
		r := NewRedactor(testKey)
		chunk := []byte(strings.Repeat(unit, (4<<10)/len(unit)+1))
		for range 32 {
			r.Process(chunk)
			if len(r.pending) > 4<<10 {
				t.Fatalf("%s: %d bytes held back, want at most 4 KiB", name, len(r.pending))
			}
		}
	}
}

// TestPairs: the table of byte pairs skip lets through holds every pair
// spawnMask, shown only those two bytes, does not rule out.
func TestPairs(t *testing.T) {
	t.Parallel()
	many := make([]string, 12)
	for i := range many {
		many[i] = fmt.Sprintf("secret-%02d-abcdef", i) // 96 patterns
	}
	for _, secrets := range [][]string{{testKey}, {"k"}, {"%41%\\u"}, {`\u0041bcdefgh`}, {"ABCDEFabcdef", "a"}, many} {
		s := NewSecrets(secrets...)
		for c := range 256 {
			for next := range 256 {
				want := s.start[c] != 0 && spawnMask(s, []byte{byte(c), byte(next)}, 0) != 0
				if got := s.pair[c][next/64]&(1<<(next%64)) != 0; want && !got {
					t.Fatalf("secrets %q: pair %q %q ruled out, want it let through", secrets, byte(c), byte(next))
				}
			}
		}
	}
}

// TestRedactorSeveralSecrets: every secret is redacted, in any form, and
// an empty one among them changes nothing.
func TestRedactorSeveralSecrets(t *testing.T) {
	t.Parallel()
	a, b := "sk-first-secret-1234", "ghp_second_secret_5678"
	in := "a=" + a + " b=" + escapeEach(b, all(4)) + " hex=" + hex.EncodeToString([]byte(a)) + " b64=" + base64.StdEncoding.EncodeToString([]byte("u:"+b)) + "\n"
	want := refRedact(refFor(a, b), in)
	if strings.Count(want, Redacted) != 4 {
		t.Fatalf("reference output %q: want 4 redactions", want)
	}
	r := NewRedactor(a, "", b)
	var out []byte
	for _, c := range byteByByteStrings(in) {
		out = append(out, r.Process([]byte(c))...)
	}
	out = append(out, r.Flush()...)
	if string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	if got := RedactString(in, a, b); got != want {
		t.Fatalf("RedactString: got %q, want %q", got, want)
	}
}

// TestSecretsNeverPrint: the compiled secrets print as [redacted], in
// every way a log line or error could print them.
func TestSecretsNeverPrint(t *testing.T) {
	t.Parallel()
	sec := NewSecrets(testKey)
	re := refFor(testKey)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "secrets", sec)
	for what, s := range map[string]string{
		"%v": fmt.Sprintf("%v", sec), "%s": fmt.Sprintf("%s", sec), "%+v": fmt.Sprintf("%+v", sec),
		"%#v": fmt.Sprintf("%#v", sec), "slog": logged.String(), "redactor %+v": fmt.Sprintf("%+v", sec.Redactor()),
	} {
		if refLeak(re, s) != "" || strings.Contains(s, testKey[14:30]) {
			t.Errorf("%s: got %.200q, want no trace of the key", what, s)
		}
	}
}

// TestRedactorRandom runs random inputs drawn from the secret's own bytes
// and its escapes (so occurrences, partial ones and overlaps are common)
// through random chunkings.
func TestRedactorRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	secrets := []string{"sk-ant-api03-x", "abab", "kkk", "k-k", "sk-sk-1", "a%2", `k\u`}
	res := map[string]*ref{}
	for _, s := range secrets {
		res[s] = refFor(s)
	}
	for range 1500 {
		secret := secrets[rng.IntN(len(secrets))]
		pieces := []string{"\n", "%", `\u00`, `\`, "7", "3", "6b", hex.EncodeToString([]byte(secret[:2]))}
		for i := range len(secret) {
			pieces = append(pieces, secret[i:i+1])
		}
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		in := b.String()
		var chunks []string
		for rest := in; len(rest) > 0; {
			n := min(len(rest), rng.IntN(len(secret)+3))
			chunks, rest = append(chunks, rest[:n]), rest[n:]
		}
		got := redact(secret, chunks...)
		if want := refRedact(res[secret], in); got != want {
			t.Fatalf("secret %q, chunks %q: got %q, want %q", secret, chunks, got, want)
		}
		if leak := refLeak(res[secret], got); leak != "" {
			t.Fatalf("secret %q, chunks %q: output %q holds %q", secret, chunks, got, leak)
		}
	}
}

func TestRedactString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s, secret, want string
	}{
		{"Authorization: Bearer sk-1", "sk-1", "Authorization: Bearer [redacted]"},
		{"sk-1sk-1", "sk-1", "[redacted]"},
		{"sk-1 sk-1", "sk-1", "[redacted] [redacted]"},
		{`"\u0073\u006B-1"`, "sk-1", `"[redacted]"`},
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

// runCuts feeds input to a new redactor of sec in chunks whose lengths
// are cuts (each byte mod 17; the rest is the last chunk), checking that
// a chunk that ends in a newline leaves nothing held when no secret holds
// one, and returns the output.
func runCuts(t *testing.T, sec *Secrets, newlineFree bool, input, cuts []byte) []byte {
	r := sec.Redactor()
	var out []byte
	rest := input
	for _, c := range cuts {
		n := min(int(c%17), len(rest))
		got := r.Process(rest[:n])
		if newlineFree && n > 0 && rest[n-1] == '\n' && len(r.pending) != 0 {
			t.Fatalf("a chunk ending in a newline left %q held back", r.pending)
		}
		out = append(out, got...)
		rest = rest[n:]
	}
	out = append(out, r.Process(rest)...)
	return append(out, r.Flush()...)
}

// FuzzRedactor checks, for any input, any secret and any chunking, that
// the output does not depend on the chunking (it equals RedactString of
// the whole input), and for printable ASCII secrets that it is exactly
// what the reference says: each maximal run of bytes that lie in an
// encoding of the secret, and nothing else, replaced by one [redacted].
// So no encoding of the secret is left in it.
//
// cuts gives the chunk lengths (each byte mod 17, zero-length chunks
// included); what is left after the cuts is the last chunk.
func FuzzRedactor(f *testing.F) {
	f.Fuzz(func(t *testing.T, input []byte, secret string, cuts []byte) {
		if secret == "" || len(input) > 4096 || len(secret) > 120 {
			return
		}
		orig := bytes.Clone(input)
		sec := NewSecrets(secret)
		out := runCuts(t, sec, !strings.Contains(secret, "\n"), input, cuts)
		if !bytes.Equal(input, orig) {
			t.Fatalf("the redactor changed its input")
		}
		whole := sec.RedactString(string(input))
		if string(out) != whole {
			t.Fatalf("secret %q, cuts %v: got %q, want %q (the whole input at once)", secret, cuts, out, whole)
		}
		if len(input) > 256 || len(secret) > 64 {
			// The reference is slow: the fuzzer's time goes further on
			// short inputs.
			if !strings.ContainsAny(secret, Redacted) && bytes.Contains(out, []byte(secret)) {
				t.Fatalf("secret %q: output %q contains it", secret, out)
			}
			return
		}
		re := refFor(secret)
		if want := refRedact(re, string(input)); string(out) != want {
			t.Fatalf("secret %q, cuts %v: got %q, want %q", secret, cuts, out, want)
		}
		// With the markers taken out (a NUL stands for each, which no
		// match holds unless the secret does), nothing is left.
		if !strings.Contains(secret, "\x00") {
			if leak := refLeak(re, string(out)); leak != "" {
				t.Fatalf("secret %q: output %q holds %q", secret, out, leak)
			}
		}
	})
}

// FuzzRedactorEncoded builds a stream that holds the secret in one of its
// forms (form: raw, hex in some mix of cases, or the base64 of the secret
// between other bytes, in either alphabet, padded or not), each byte of
// that written plainly or escaped as escapes says, between before and
// after; and checks that for every chunking the output holds no encoding
// of the secret and does not depend on the chunking.
func FuzzRedactorEncoded(f *testing.F) {
	f.Fuzz(func(t *testing.T, before, after []byte, secret string, form uint8, escapes, cuts []byte) {
		if secret == "" || len(secret) > 120 || len(before)+len(after) > 1024 {
			return
		}
		enc := secret
		if len(secret) >= MinEncodedLen {
			switch form % 4 {
			case 1:
				enc = hex.EncodeToString([]byte(secret))
				if len(escapes) > 0 {
					b := []byte(enc)
					for i := range b {
						if escapes[i%len(escapes)]&0x80 != 0 && b[i] >= 'a' {
							b[i] -= 'a' - 'A'
						}
					}
					enc = string(b)
				}
			case 2, 3:
				encs := []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding}
				lead := bytes.Repeat([]byte{form}, int(form>>2)%5)
				text := append(append(lead, secret...), after[:min(len(after), int(form>>5))]...)
				enc = encs[int(form>>4)%4].EncodeToString(text)
			}
		}
		if len(escapes) > 0 {
			enc = escapeEach(enc, func(i int, _ byte) int { return int(escapes[i%len(escapes)]) })
		}
		input := append(append(bytes.Clone(before), enc...), after...)
		sec := NewSecrets(secret)
		out := runCuts(t, sec, !strings.Contains(secret, "\n"), input, cuts)
		if whole := sec.RedactString(string(input)); string(out) != whole {
			t.Fatalf("secret %q, cuts %v: got %q, want %q (the whole input at once)", secret, cuts, out, whole)
		}
		if bytes.Contains(out, []byte(enc)) && !strings.Contains(Redacted, enc) {
			t.Fatalf("secret %q: the encoding %q is still in the output %q", secret, enc, out)
		}
		// The markers taken out (a NUL stands for each, which no match
		// holds unless the secret does), nothing is left.
		if !strings.Contains(secret, "\x00") && len(out) <= 1024 {
			if leak := refLeak(refFor(secret), string(out)); leak != "" {
				t.Fatalf("secret %q: output %q holds %q", secret, out, leak)
			}
		}
	})
}
