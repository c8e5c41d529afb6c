// Package credentials says what a provider API key is and how it is named:
// the Secret that holds it, the checks on a key and on a name, the
// <provider>/<alias> it is stored under, and the index entry that says
// where it is (never the key). Package keystore, which only the daemon
// opens, stores the keys.
//
// A key is held in a Secret, which prints as [redacted] in every format, so
// a key that reaches a log line, an error or a response by mistake does not
// leak.
package credentials

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/neullabs/ringlet/names"
)

const redacted = "[redacted]"

// Secret is a provider key. The key sits behind a pointer because fmt
// prints a Secret held in an unexported struct field without calling its
// methods: it then shows an address, not the key.
type Secret struct{ v *string }

// NewSecret wraps a key.
func NewSecret(v string) Secret { return Secret{v: &v} }

// Reveal returns the key, for the moment it is used (an outgoing header).
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) Format(f fmt.State, _ rune)   { io.WriteString(f, redacted) }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MaxKeyLen bounds a key; provider keys are a few hundred bytes at most.
const MaxKeyLen = 8192

// ValidateKey checks a key typed or piped in by the user.
func ValidateKey(k string) error {
	if k == "" {
		return errors.New("the key is empty; paste the provider's API key")
	}
	if len(k) > MaxKeyLen {
		return fmt.Errorf("the key is longer than %d bytes; that is not an API key", MaxKeyLen)
	}
	// Invalid UTF-8 would not survive the file backend: its TOML encoder
	// rewrites such bytes, so the key read back would differ.
	if !utf8.ValidString(k) {
		return errors.New("the key is not valid UTF-8 text; that is not an API key")
	}
	for _, r := range k {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return errors.New("the key contains whitespace, a newline or a control character; paste it as one line without spaces")
		}
		// Zero-width spaces, byte-order marks and soft hyphens come along
		// with copy and paste, are invisible, and make the provider reject
		// the key much later.
		if unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("the key contains an invisible character (U+%04X); paste it again without it", r)
		}
	}
	return nil
}

// Ref names a stored key: <provider>/<alias>.
type Ref struct {
	Provider string `json:"provider"`
	Alias    string `json:"alias"`
}

// NewRef validates both names.
func NewRef(provider, alias string) (Ref, error) {
	if err := names.Check("provider", provider); err != nil {
		return Ref{}, err
	}
	if err := names.Check("alias", alias); err != nil {
		return Ref{}, err
	}
	return Ref{Provider: provider, Alias: alias}, nil
}

// ParseRef parses "provider/alias".
func ParseRef(s string) (Ref, error) {
	p, a, ok := strings.Cut(s, "/")
	if !ok {
		return Ref{}, fmt.Errorf("invalid credential %q: want <provider>/<alias>", s)
	}
	return NewRef(p, a)
}

func (r Ref) String() string { return r.Provider + "/" + r.Alias }
