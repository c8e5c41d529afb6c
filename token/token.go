// Package token manages the daemon's bearer token file: 32 random bytes,
// hex-encoded, in a 0600 file inside a 0700 directory.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/neullabs/ringlet/privatefile"
)

// Size is the number of random bytes in a token.
const Size = 32

// encodedLen is the length of a hex-encoded token.
const encodedLen = 2 * Size

// Token is a bearer token. Its String and GoString print [redacted] so a
// token that reaches a log line or an error by mistake does not leak.
type Token struct{ v string }

// Value returns the token itself, for the one place that needs it: the
// Authorization header of an outgoing request.
func (t Token) Value() string { return t.v }

// Hash returns the SHA-256 of the token, the form the daemon compares.
func (t Token) Hash() [32]byte { return sha256.Sum256([]byte(t.v)) }

func (Token) String() string   { return redacted }
func (Token) GoString() string { return redacted }

// Format prints [redacted] for every verb, including %d and %x, which would
// otherwise print the struct's field.
func (Token) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// LogValue keeps the token out of slog output.
func (Token) LogValue() slog.Value { return slog.StringValue(redacted) }

const redacted = "[redacted]"

// IsZero reports whether t holds no token.
func (t Token) IsZero() bool { return t.v == "" }

// FromString wraps a token given by the user (RINGLET_TOKEN).
func FromString(s string) Token { return Token{v: s} }

// Generate returns a new random token.
func Generate() (Token, error) {
	var b [Size]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Token{}, fmt.Errorf("generate token: %w", err)
	}
	return Token{v: hex.EncodeToString(b[:])}, nil
}

// Load reads and checks the token file at path.
func Load(path string) (Token, error) {
	data, err := privatefile.Read(path, 4096)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Token{}, fmt.Errorf("token file %s does not exist: %w", path, fs.ErrNotExist)
		}
		return Token{}, fmt.Errorf("token file: %w", err)
	}
	v := strings.TrimRight(string(data), "\r\n")
	if !valid(v) {
		return Token{}, fmt.Errorf("token file %s does not hold a ringlet token (want %d hex characters); remove it and start the daemon to create a new one", path, encodedLen)
	}
	return Token{v: v}, nil
}

// LoadOrCreate loads the token at path, creating the file and its 0700
// directory with a new token when it does not exist. created reports
// whether it made a new one.
func LoadOrCreate(path string) (t Token, created bool, err error) {
	t, err = Load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return t, false, err
	}
	if err := privatefile.EnsureDir(filepath.Dir(path)); err != nil {
		return Token{}, false, fmt.Errorf("token directory: %w", err)
	}
	t, err = Generate()
	if err != nil {
		return Token{}, false, err
	}
	if err := privatefile.Create(path, []byte(t.v+"\n")); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it between our read and create.
			t, err = Load(path)
			return t, false, err
		}
		return Token{}, false, fmt.Errorf("create token file %s: %w", path, err)
	}
	return t, true, nil
}

// Replace writes a new token to path atomically and returns it. The old
// file, if any, must pass the same checks as Load: a token file someone
// else could read is not quietly papered over.
func Replace(path string) (Token, error) {
	if err := privatefile.Check(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Token{}, fmt.Errorf("token file: %w", err)
	}
	if err := privatefile.EnsureDir(filepath.Dir(path)); err != nil {
		return Token{}, fmt.Errorf("token directory: %w", err)
	}
	t, err := Generate()
	if err != nil {
		return Token{}, err
	}
	if err := privatefile.WriteAtomic(path, []byte(t.v+"\n"), privatefile.FileMode); err != nil {
		return Token{}, fmt.Errorf("replace token file: %w", err)
	}
	return t, nil
}

func valid(s string) bool {
	if len(s) != encodedLen {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
