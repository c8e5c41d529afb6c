package credentials

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const leakKey = "sk-ant-DO-NOT-LEAK-0123456789"

// assertRedacted fails when out holds the key in any spelling fmt can
// produce.
func assertRedacted(t *testing.T, out string) {
	t.Helper()
	h := hex.EncodeToString([]byte(leakKey))
	for _, leak := range []string{leakKey, "DO-NOT-LEAK", h, strings.ToUpper(h)} {
		if strings.Contains(out, leak) {
			t.Errorf("got %q, want no trace of the key", out)
			return
		}
	}
}

type exported struct {
	Name string
	Key  Secret
	Ptr  *Secret
}

type unexported struct {
	name string
	key  Secret
}

func TestSecretFmt(t *testing.T) {
	t.Parallel()
	s := NewSecret(leakKey)
	values := []struct {
		name string
		v    any
		// redactedShown: the output must say [redacted]; fmt skips the
		// methods of unexported fields, which show an address instead.
		redactedShown bool
	}{
		{"value", s, true},
		{"pointer", &s, true},
		{"exported field", exported{"a", s, &s}, true},
		{"pointer to struct", &exported{"a", s, &s}, true},
		{"unexported field", unexported{"a", s}, false},
		{"pointer to unexported field", &unexported{"a", s}, false},
		{"slice", []Secret{s}, true},
		{"map", map[string]Secret{"k": s}, true},
		{"any", []any{s}, true},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%[1]T %[1]v", "%10.3s", "%-20v"}
	for _, v := range values {
		for _, verb := range verbs {
			t.Run(v.name+"/"+verb, func(t *testing.T) {
				out := fmt.Sprintf(verb, v.v)
				assertRedacted(t, out)
				if v.redactedShown && !strings.Contains(out, redacted) {
					t.Errorf("got %q, want %s in it", out, redacted)
				}
			})
		}
	}
	t.Run("Print", func(t *testing.T) {
		out := fmt.Sprint(s, &s) + fmt.Sprintln(s) + s.String() + s.GoString()
		assertRedacted(t, out)
	})
	t.Run("error", func(t *testing.T) {
		err := fmt.Errorf("call with %v: %w", s, errors.New("boom"))
		assertRedacted(t, err.Error())
	})
}

func TestSecretJSON(t *testing.T) {
	t.Parallel()
	s := NewSecret(leakKey)
	values := []struct {
		name string
		v    any
		want string
	}{
		{"value", s, `"[redacted]"`},
		{"pointer", &s, `"[redacted]"`},
		{"struct", exported{"a", s, &s}, `{"Name":"a","Key":"[redacted]","Ptr":"[redacted]"}`},
		{"unexported field", unexported{"a", s}, `{}`},
		{"map value", map[string]Secret{"k": s}, `{"k":"[redacted]"}`},
		{"map key", map[Secret]int{s: 1}, `{"[redacted]":1}`},
		{"slice", []Secret{s}, `["[redacted]"]`},
	}
	for _, v := range values {
		t.Run(v.name, func(t *testing.T) {
			b, err := json.Marshal(v.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != v.want {
				t.Errorf("json.Marshal: got %s, want %s", b, v.want)
			}
			assertRedacted(t, string(b))
		})
	}
}

func TestSecretSlog(t *testing.T) {
	t.Parallel()
	s := NewSecret(leakKey)
	handlers := []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
	}
	logs := []struct {
		name string
		log  func(*slog.Logger)
	}{
		{"pair", func(l *slog.Logger) { l.Info("m", "key", s) }},
		{"pointer", func(l *slog.Logger) { l.Info("m", "key", &s) }},
		{"Any", func(l *slog.Logger) { l.Info("m", slog.Any("key", s)) }},
		{"group", func(l *slog.Logger) { l.Info("m", slog.Group("g", "key", s)) }},
		{"With", func(l *slog.Logger) { l.With("key", s).Info("m") }},
		{"struct", func(l *slog.Logger) { l.Info("m", "v", exported{"a", s, &s}) }},
		{"unexported field", func(l *slog.Logger) { l.Info("m", "v", unexported{"a", s}) }},
		{"slice", func(l *slog.Logger) { l.Info("m", "v", []Secret{s}) }},
		{"message", func(l *slog.Logger) { l.Info(fmt.Sprint("using ", s)) }},
	}
	for _, h := range handlers {
		for _, lg := range logs {
			t.Run(h.name+"/"+lg.name, func(t *testing.T) {
				var buf bytes.Buffer
				lg.log(slog.New(h.new(&buf)))
				if buf.Len() == 0 {
					t.Fatal("got no log line, want one")
				}
				assertRedacted(t, buf.String())
			})
		}
	}
}

func TestSecretReveal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		s        Secret
		want     string
		wantZero bool
	}{
		{"zero value", Secret{}, "", true},
		{"empty", NewSecret(""), "", true},
		{"key", NewSecret(leakKey), leakKey, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Reveal(); got != tt.want {
				t.Errorf("Reveal: got a %d-byte value, want %d bytes", len(got), len(tt.want))
			}
			if got := tt.s.IsZero(); got != tt.wantZero {
				t.Errorf("IsZero: got %v, want %v", got, tt.wantZero)
			}
		})
	}
}

func TestValidateKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		key     string
		wantErr bool
	}{
		{"normal", "sk-ant-api03-AbC_dEf-123", false},
		{"punctuation", `k+/=.:~!"'\`, false},
		{"exactly the limit", strings.Repeat("k", MaxKeyLen), false},
		{"empty", "", true},
		{"only a space", " ", true},
		{"leading space", " sk-abc", true},
		{"trailing newline", "sk-abc\n", true},
		{"space inside", "sk-a bc", true},
		{"tab inside", "sk-a\tbc", true},
		{"newline inside", "sk-a\nbc", true},
		{"carriage return", "sk-a\rbc", true},
		{"NUL", "sk-a\x00bc", true},
		{"escape", "sk-a\x1bbc", true},
		{"DEL", "sk-a\x7fbc", true},
		{"C1 control", "sk-a\u0085bc", true},
		{"no-break space", "sk-a\u00a0bc", true},
		{"line separator", "sk-a\u2028bc", true},
		{"ideographic space", "sk-a\u3000bc", true},
		{"invalid UTF-8", "sk-a\xffbc", true},
		{"one over the limit", strings.Repeat("k", MaxKeyLen+1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateKey(tt.key)
			if got := err != nil; got != tt.wantErr {
				t.Fatalf("ValidateKey: got %v, want error %v", err, tt.wantErr)
			}
			if err != nil && len(strings.TrimSpace(tt.key)) > 2 && strings.Contains(err.Error(), strings.TrimSpace(tt.key)) {
				t.Errorf("ValidateKey: got %q, want an error that does not quote the key", err)
			}
		})
	}
}

func TestParseRef(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Ref
		wantErr bool
	}{
		{"anthropic/work", Ref{"anthropic", "work"}, false},
		{"openai/a.b_c-1", Ref{"openai", "a.b_c-1"}, false},
		{"anthropic", Ref{}, true},
		{"anthropic/", Ref{}, true},
		{"/work", Ref{}, true},
		{"anthropic/work/x", Ref{}, true},
		{"Anthropic/work", Ref{}, true},
		{"anthropic/../x", Ref{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRef(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseRef(%q): got %v, %v, want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err == nil && got.String() != tt.in {
				t.Errorf("String: got %q, want %q", got.String(), tt.in)
			}
		})
	}
}
