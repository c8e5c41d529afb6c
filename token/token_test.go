package token

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestLoadOrCreate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "config", "ringlet")
	path := filepath.Join(dir, "http_token")

	first, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: got (created=%v, err=%v), want a new token", created, err)
	}
	v := first.Value()
	if len(v) != 64 {
		t.Errorf("token length: got %d, want 64", len(v))
	}
	if _, err := hex.DecodeString(v); err != nil || strings.ToLower(v) != v {
		t.Errorf("token %q: want lower-case hex", v)
	}
	if got := mode(t, path); got != 0o600 {
		t.Errorf("token file mode: got %04o, want 0600", got)
	}
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("token dir mode: got %04o, want 0700", got)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != v+"\n" {
		t.Errorf("token file: got (%q, %v), want the token and a newline", data, err)
	}

	second, created, err := LoadOrCreate(path)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate: got (created=%v, err=%v), want the existing token", created, err)
	}
	if second.Value() != v {
		t.Errorf("second LoadOrCreate: got a different token, want the same")
	}
}

func TestLoadOrCreateRefusesUnsafeFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "http_token")
	if err := os.WriteFile(path, []byte(strings.Repeat("a", 64)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, created, err := LoadOrCreate(path); err == nil || created || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("LoadOrCreate of a 0644 file: got (created=%v, err=%v), want an error saying chmod 600", created, err)
	}
}

func TestGenerateIsRandom(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 20 {
		tok, err := Generate()
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		if seen[tok.Value()] {
			t.Fatalf("Generate: got a repeated token, want fresh ones")
		}
		seen[tok.Value()] = true
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	valid := strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		name    string
		content string
		want    string
		wantErr []string
	}{
		{name: "with newline", content: valid + "\n", want: valid},
		{name: "with CRLF", content: valid + "\r\n", want: valid},
		{name: "without newline", content: valid, want: valid},
		{name: "upper-case hex", content: strings.ToUpper(valid), want: strings.ToUpper(valid)},
		{name: "garbage", content: "not a token\n", wantErr: []string{"64 hex characters", "remove it"}},
		{name: "empty", content: "", wantErr: []string{"64 hex characters", "remove it"}},
		{name: "one short", content: valid[:63], wantErr: []string{"64 hex characters"}},
		{name: "one long", content: valid + "0", wantErr: []string{"64 hex characters"}},
		{name: "non-hex of the right length", content: strings.Repeat("g", 64), wantErr: []string{"64 hex characters"}},
		{name: "leading space", content: " " + valid[1:], wantErr: []string{"64 hex characters"}},
		{name: "two tokens", content: valid + "\n" + valid + "\n", wantErr: []string{"64 hex characters"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "http_token")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Load: got a token, nil error; want an error")
				}
				if !got.IsZero() {
					t.Errorf("Load: got a non-zero token with an error, want zero")
				}
				for _, w := range append(tt.wantErr, path) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error: got %q, want it to contain %q", err, w)
					}
				}
				if tt.content != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.content)) {
					t.Errorf("error %q repeats the file content, want it kept out", err)
				}
				return
			}
			if err != nil || got.Value() != tt.want {
				t.Errorf("Load: got (%q, %v), want (%q, nil)", got.Value(), err, tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	if _, err := Load(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing): got %v, want an error matching fs.ErrNotExist that names the file", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("a"), 5000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load(5000-byte file): got %v, want a size error", err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(big, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Load(symlink): got %v, want a symbolic link error", err)
	}
}

func TestReplace(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ringlet", "http_token")
	old, _, err := LoadOrCreate(path)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	fresh, err := Replace(path)
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if fresh.Value() == old.Value() {
		t.Errorf("Replace: got the old token, want a different one")
	}
	loaded, err := Load(path)
	if err != nil || loaded.Value() != fresh.Value() {
		t.Errorf("Load after Replace: got (%v, %v), want the replacement", loaded.Value() == fresh.Value(), err)
	}
	if got := mode(t, path); got != 0o600 {
		t.Errorf("mode after Replace: got %04o, want 0600", got)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("token dir after Replace: got %d entries, want 1 (no temporary files)", len(entries))
	}
}

func TestReplaceCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string)
		wantErr string
	}{
		{name: "no file yet"},
		{name: "0644 file", setup: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "chmod 600"},
		{name: "symlink", setup: func(t *testing.T, path string) {
			if err := os.Symlink(filepath.Join(filepath.Dir(path), "elsewhere"), path); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "symbolic link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "http_token")
			if tt.setup != nil {
				tt.setup(t, path)
			}
			tok, err := Replace(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Replace: got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || tok.IsZero() {
				t.Fatalf("Replace: got (zero=%v, %v), want a token", tok.IsZero(), err)
			}
			if loaded, err := Load(path); err != nil || loaded.Value() != tok.Value() {
				t.Errorf("Load after Replace: got error %v or a different token, want the replacement", err)
			}
		})
	}
}

func TestRedaction(t *testing.T) {
	t.Parallel()
	tok, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	secret := tok.Value()
	wrapped := struct{ T Token }{tok}

	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%s", "%d", "%x", "%X", "%q", "%+v", "%#v", "%T %v", "%10.3s"} {
		outputs["Sprintf "+verb+" value"] = fmt.Sprintf(verb, tok)
		outputs["Sprintf "+verb+" pointer"] = fmt.Sprintf(verb, &tok)
		outputs["Sprintf "+verb+" in struct"] = fmt.Sprintf(verb, wrapped)
	}
	outputs["Sprintf slice"] = fmt.Sprintf("%v", []Token{tok})
	outputs["Sprint"] = fmt.Sprint(tok)
	outputs["Sprintln"] = fmt.Sprintln(tok)
	outputs["String"] = tok.String()
	outputs["GoString"] = tok.GoString()
	outputs["Errorf"] = fmt.Errorf("load %v: %w", tok, errors.New("x")).Error()

	var jsonLog, textLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("token", "token", tok, "ptr", &tok, slog.Any("any", tok), slog.Group("g", "t", tok))
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("token", "token", tok)
	outputs["slog JSON"] = jsonLog.String()
	outputs["slog text"] = textLog.String()

	data, err := json.Marshal(tok) //nolint:staticcheck // SA9005: that it has nothing to marshal is what is checked
	if err != nil {
		t.Fatal(err)
	}
	outputs["json.Marshal"] = string(data)

	for name, out := range outputs {
		if strings.Contains(out, secret) || strings.Contains(strings.ToLower(out), secret[:16]) {
			t.Errorf("%s: got %q, want no token value", name, out)
		}
	}
	for _, name := range []string{"Sprintf %v value", "Sprintf %d value", "Sprintf %#v value", "slog JSON", "String"} {
		if !strings.Contains(outputs[name], "[redacted]") {
			t.Errorf("%s: got %q, want [redacted]", name, outputs[name])
		}
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	a, b := FromString("a"), FromString("b")
	if a.Hash() == b.Hash() {
		t.Errorf("Hash: got equal hashes for different tokens, want different")
	}
	if a.Hash() != FromString("a").Hash() {
		t.Errorf("Hash: got different hashes for one token, want equal")
	}
	if !(Token{}).IsZero() || FromString("x").IsZero() {
		t.Errorf("IsZero: got wrong answer for the zero or a set token")
	}
}
