package config

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Config
	}{
		{name: "empty", in: "", want: Config{}},
		{name: "comments only", in: "# nothing here\n", want: Config{}},
		{
			name: "every key",
			in: `[daemon]
listen = "[::1]:9000"
idle_timeout = "1h30m"
log_level = "debug"

[credentials]
backend = "file"

[audit]
path = "~/audit.db"
`,
			want: Config{
				Daemon:      DaemonConfig{Listen: "[::1]:9000", IdleTimeout: "1h30m", LogLevel: "debug"},
				Credentials: CredentialsConfig{Backend: "file"},
				Audit:       AuditConfig{Path: "~/audit.db"},
			},
		},
		{name: "dotted keys", in: "daemon.listen = \"localhost:1\"\n", want: Config{Daemon: DaemonConfig{Listen: "localhost:1"}}},
		{name: "idle zero", in: "[daemon]\nidle_timeout = \"0\"\n", want: Config{Daemon: DaemonConfig{IdleTimeout: "0"}}},
		{name: "absolute audit path", in: "[audit]\npath = \"/var/tmp/a.db\"\n", want: Config{Audit: AuditConfig{Path: "/var/tmp/a.db"}}},
		{name: "proxy timeouts", in: "[proxy]\nidle_timeout = \"1m\"\nresponse_header_timeout = \"2m30s\"\n",
			want: Config{Proxy: ProxyConfig{IdleTimeout: "1m", ResponseHeaderTimeout: "2m30s"}}},
		{name: "session lifetimes", in: "[sessions]\nidle_timeout = \"30m\"\nmax_ttl = \"8h\"\n",
			want: Config{Sessions: SessionsConfig{IdleTimeout: "30m", MaxTTL: "8h"}}},
		{name: "session idle never", in: "[sessions]\nidle_timeout = \"0\"\n", want: Config{Sessions: SessionsConfig{IdleTimeout: "0"}}},
		{name: "session idle equal to its ttl", in: "[sessions]\nidle_timeout = \"1h\"\nmax_ttl = \"1h\"\n",
			want: Config{Sessions: SessionsConfig{IdleTimeout: "1h", MaxTTL: "1h"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: got error %v, want nil", err)
			}
			if *c != tt.want {
				t.Errorf("Parse: got %+v, want %+v", *c, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error
	}{
		{name: "unknown key", in: "[daemon]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n", want: []string{"line 3", `"daemon.bogus"`, "known keys", "daemon.listen"}},
		{name: "unknown top-level key", in: "\ntop = 1\n", want: []string{"line 2", `"top"`}},
		{name: "unknown table", in: "[foo]\nx = 1\n", want: []string{"line 1", `"foo"`, "known keys"}},
		{name: "unknown key in known table", in: "[audit]\n\n\n\nmode = \"x\"\n", want: []string{"line 5", `"audit.mode"`}},
		{name: "malformed value", in: "[daemon]\nlisten = \n", want: []string{"line 2", "fix the file"}},
		{name: "malformed table header", in: "\n\n[daemon\n", want: []string{"line 3"}},
		{name: "two values on a line", in: "[daemon]\n\n\nlisten = \"a\" \"b\"\n", want: []string{"line 4"}},
		{name: "wrong type", in: "[daemon]\nlisten = 8765\n", want: []string{"line 2", "integer"}},
		{name: "duplicate key", in: "[daemon]\nlisten = \"127.0.0.1:1\"\nlisten = \"127.0.0.1:2\"\n", want: []string{"line 3"}},

		{name: "listen not loopback", in: "[daemon]\nlisten = \"0.0.0.0:80\"\n", want: []string{"daemon.listen", "loopback"}},
		{name: "listen no port", in: "[daemon]\nlisten = \"127.0.0.1\"\n", want: []string{"daemon.listen", "HOST:PORT"}},
		{name: "idle garbage", in: "[daemon]\nidle_timeout = \"soon\"\n", want: []string{"daemon.idle_timeout", "10m"}},
		{name: "idle negative", in: "[daemon]\nidle_timeout = \"-1m\"\n", want: []string{"daemon.idle_timeout"}},
		{name: "idle too short", in: "[daemon]\nidle_timeout = \"5ms\"\n", want: []string{"daemon.idle_timeout", "1s"}},
		{name: "log level", in: "[daemon]\nlog_level = \"loud\"\n", want: []string{`"loud"`, "daemon.log_level", "debug, info, warn, error"}},
		{name: "log level case", in: "[daemon]\nlog_level = \"INFO\"\n", want: []string{"daemon.log_level", "debug, info, warn, error"}},
		{name: "backend", in: "[credentials]\nbackend = \"vault\"\n", want: []string{`"vault"`, "credentials.backend", "auto, keyring, file"}},
		{name: "relative audit path", in: "[audit]\npath = \"audit.db\"\n", want: []string{"audit.path", "absolute"}},
		{name: "audit path with newline", in: "[audit]\npath = \"/a\\nb\"\n", want: []string{"audit.path", "newline"}},
		{name: "tilde user audit path", in: "[audit]\npath = \"~bob/a.db\"\n", want: []string{"audit.path"}},
		{name: "header timeout garbage", in: "[proxy]\nresponse_header_timeout = \"forever\"\n", want: []string{"proxy.response_header_timeout", "10m"}},
		{name: "header timeout too short", in: "[proxy]\nresponse_header_timeout = \"500ms\"\n", want: []string{"proxy.response_header_timeout", "1s"}},
		{name: "header timeout negative", in: "[proxy]\nresponse_header_timeout = \"-5s\"\n", want: []string{"proxy.response_header_timeout"}},
		{name: "session idle too short", in: "[sessions]\nidle_timeout = \"30s\"\n", want: []string{"sessions.idle_timeout", "1m to 720h", "0 for never"}},
		{name: "session idle garbage", in: "[sessions]\nidle_timeout = \"-2h\"\n", want: []string{"sessions.idle_timeout"}},
		{name: "restart grace too long", in: "[sessions]\nrestart_grace = \"2h\"\n", want: []string{"sessions.restart_grace", "1s to 1h"}},
		{name: "restart grace not a duration", in: "[sessions]\nrestart_grace = \"soon\"\n", want: []string{"sessions.restart_grace", "1s to 1h"}},
		{name: "session ttl zero", in: "[sessions]\nmax_ttl = \"0\"\n", want: []string{"sessions.max_ttl", "1m to 720h"}},
		{name: "session ttl too long", in: "[sessions]\nmax_ttl = \"721h\"\n", want: []string{"sessions.max_ttl", "1m to 720h"}},
		// The default max_ttl (12h) counts against a longer idle_timeout.
		{name: "session idle past the default ttl", in: "[sessions]\nidle_timeout = \"13h\"\n",
			want: []string{"sessions.idle_timeout (13h0m0s) is longer than sessions.max_ttl (12h0m0s)", "raise sessions.max_ttl"}},
		{name: "session idle past its ttl", in: "[sessions]\nidle_timeout = \"2h\"\nmax_ttl = \"1h\"\n", want: []string{"sessions.idle_timeout", "sessions.max_ttl (1h0m0s)"}},
		{name: "two bad values", in: "[daemon]\nlog_level = \"loud\"\n[credentials]\nbackend = \"vault\"\n", want: []string{"daemon.log_level", "credentials.backend"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse: got %+v, nil error; want an error", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error: got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestParseListen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr     string
		explicit bool
		want     Listen
		wantAddr string
		wantErr  string
	}{
		{addr: "127.0.0.1:8765", want: Listen{Host: "127.0.0.1", Port: 8765, Loopback: true}, wantAddr: "127.0.0.1:8765"},
		{addr: "127.1.2.3:1", want: Listen{Host: "127.1.2.3", Port: 1, Loopback: true}},
		{addr: "[::1]:8765", want: Listen{Host: "::1", Port: 8765, Loopback: true}, wantAddr: "[::1]:8765"},
		{addr: "localhost:0", want: Listen{Host: "localhost", Port: 0, Loopback: true}},
		{addr: "LocalHost:65535", want: Listen{Host: "localhost", Port: 65535, Loopback: true}, wantAddr: "localhost:65535"},
		{addr: "0.0.0.0:1", wantErr: "not a loopback address"},
		{addr: "0.0.0.0:1", explicit: true, want: Listen{Host: "0.0.0.0", Port: 1}},
		{addr: ":8080", wantErr: "not a loopback address"},
		{addr: ":8080", explicit: true, want: Listen{Port: 8080}, wantAddr: ":8080"},
		{addr: "[::]:1", wantErr: "not a loopback address"},
		{addr: "192.0.2.1:80", wantErr: "not a loopback address"},
		{addr: "192.0.2.1:80", explicit: true, want: Listen{Host: "192.0.2.1", Port: 80}},
		{addr: "example.com:80", wantErr: "HOST:PORT"},
		{addr: "example.com:80", explicit: true, wantErr: "HOST:PORT"},
		{addr: "1.2.3.4", explicit: true, wantErr: "HOST:PORT"},
		{addr: "127.0.0.1", wantErr: "HOST:PORT"},
		{addr: "", wantErr: "HOST:PORT"},
		{addr: ":99999", explicit: true, wantErr: "0 to 65535"},
		{addr: "127.0.0.1:65536", wantErr: "0 to 65535"},
		{addr: "127.0.0.1:-1", wantErr: "0 to 65535"},
		{addr: "127.0.0.1:http", wantErr: "0 to 65535"},
		{addr: "127.0.0.1:", wantErr: "0 to 65535"},
		{addr: "[fe80::1%eth0]:80", explicit: true, wantErr: "HOST:PORT"},
		{addr: "[::1%lo]:80", wantErr: "HOST:PORT"},
		{addr: "::1:80", wantErr: "HOST:PORT"},
	}
	for _, tt := range tests {
		name := tt.addr
		if tt.explicit {
			name += " explicit"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseListen(tt.addr, tt.explicit)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseListen: got %+v, nil error; want an error containing %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error: got %q, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseListen: got error %v, want nil", err)
			}
			if got != tt.want {
				t.Errorf("ParseListen: got %+v, want %+v", got, tt.want)
			}
			if tt.wantAddr != "" && got.Addr() != tt.wantAddr {
				t.Errorf("Addr: got %q, want %q", got.Addr(), tt.wantAddr)
			}
		})
	}
}

func TestEffectiveValues(t *testing.T) {
	t.Parallel()
	p := Paths{Home: "/home/u", StateDir: "/home/u/.local/state/ringlet"}
	tests := []struct {
		name      string
		c         Config
		listen    string
		idle      time.Duration
		level     slog.Level
		auditPath string
		// headerTimeout is proxy.response_header_timeout.
		headerTimeout time.Duration
		// sessionIdle and sessionTTL are the sessions table's.
		sessionIdle, sessionTTL time.Duration
	}{
		{name: "defaults", listen: DefaultListen, idle: 10 * time.Minute, level: slog.LevelInfo, auditPath: "/home/u/.local/state/ringlet/audit.db", headerTimeout: 10 * time.Minute,
			sessionIdle: 2 * time.Hour, sessionTTL: 12 * time.Hour},
		{
			name: "set",
			c: Config{Daemon: DaemonConfig{Listen: "[::1]:1", IdleTimeout: "0", LogLevel: "warn"}, Audit: AuditConfig{Path: "~/a.db"}, Proxy: ProxyConfig{ResponseHeaderTimeout: "0"},
				Sessions: SessionsConfig{IdleTimeout: "0", MaxTTL: "90m"}},
			listen: "[::1]:1", idle: 0, level: slog.LevelWarn, auditPath: "/home/u/a.db", sessionTTL: 90 * time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.c.Listen(); got != tt.listen {
				t.Errorf("Listen: got %q, want %q", got, tt.listen)
			}
			if got := tt.c.IdleTimeout(); got != tt.idle {
				t.Errorf("IdleTimeout: got %v, want %v", got, tt.idle)
			}
			if got := tt.c.SessionIdle(); got != tt.sessionIdle {
				t.Errorf("SessionIdle: got %v, want %v", got, tt.sessionIdle)
			}
			if got := tt.c.SessionMaxTTL(); got != tt.sessionTTL {
				t.Errorf("SessionMaxTTL: got %v, want %v", got, tt.sessionTTL)
			}
			if got := tt.c.ProxyResponseHeaderTimeout(); got != tt.headerTimeout {
				t.Errorf("ProxyResponseHeaderTimeout: got %v, want %v", got, tt.headerTimeout)
			}
			if got := tt.c.LogLevel(); got != tt.level {
				t.Errorf("LogLevel: got %v, want %v", got, tt.level)
			}
			got, err := tt.c.AuditPath(p)
			if err != nil || got != tt.auditPath {
				t.Errorf("AuditPath: got (%q, %v), want (%q, nil)", got, err, tt.auditPath)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	p := Paths{StateDir: "/s"}
	defaults := map[string]string{
		"daemon.listen":                 DefaultListen,
		"daemon.idle_timeout":           "10m",
		"daemon.log_level":              "info",
		"credentials.backend":           "auto",
		"audit.path":                    "/s/audit.db",
		"audit.sync":                    "normal",
		"proxy.idle_timeout":            "5m",
		"proxy.response_header_timeout": "10m",
		"sessions.idle_timeout":         "2h",
		"sessions.max_ttl":              "12h",
		"sessions.restart_grace":        "2m",
		"otel.endpoint":                 "",
		"otel.protocol":                 "http",
		"otel.headers":                  "",
		"otel.content":                  "digests",
	}
	if len(Keys) != len(defaults) {
		t.Errorf("Keys: got %d keys, want %d", len(Keys), len(defaults))
	}
	for _, k := range Keys {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			def := k.Default(p)
			if want, ok := defaults[k.Name]; !ok || def != want {
				t.Errorf("Default: got %q, want %q", def, want)
			}
			if def == "" {
				// Off by default (otel.endpoint, otel.headers): unset is
				// the default, and a bad value is refused.
				var c Config
				if err := k.Set(&c, "\x00not valid"); err == nil {
					t.Errorf("Set of an invalid value: got nil error, want one")
				}
				return
			}
			// Every default is itself a valid value.
			if err := k.ValidateValue(def); err != nil {
				t.Errorf("ValidateValue(default %q): got %v, want nil", def, err)
			}
			var c Config
			if _, ok := k.Get(&c); ok {
				t.Errorf("Get on an empty config: got set, want unset")
			}
			if err := k.Set(&c, def); err != nil {
				t.Fatalf("Set(%q): %v", def, err)
			}
			if v, ok := k.Get(&c); !ok || v != def {
				t.Errorf("Get after Set: got (%q, %v), want (%q, true)", v, ok, def)
			}
			if err := k.Set(&c, "\x00not valid"); err == nil {
				t.Errorf("Set of an invalid value: got nil error, want one")
			}
			if v, _ := k.Get(&c); v != def {
				t.Errorf("Get after a refused Set: got %q, want %q unchanged", v, def)
			}
			k.Unset(&c)
			if c != (Config{}) {
				t.Errorf("after Unset: got %+v, want an empty config", c)
			}
			got, err := LookupKey(k.Name)
			if err != nil || got.Name != k.Name {
				t.Errorf("LookupKey(%q): got (%q, %v), want the key", k.Name, got.Name, err)
			}
		})
	}
}

func TestLookupKeyUnknown(t *testing.T) {
	t.Parallel()
	_, err := LookupKey("daemon.nope")
	if err == nil || !strings.Contains(err.Error(), `"daemon.nope"`) || !strings.Contains(err.Error(), "daemon.listen") {
		t.Errorf("LookupKey: got %v, want an error naming the key and the known keys", err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    Config
	}{
		{name: "empty", c: Config{}},
		{name: "one key", c: Config{Daemon: DaemonConfig{LogLevel: "error"}}},
		{name: "every key", c: Config{
			Daemon:      DaemonConfig{Listen: "localhost:9999", IdleTimeout: "0", LogLevel: "debug"},
			Credentials: CredentialsConfig{Backend: "keyring"},
			Audit:       AuditConfig{Path: `/tmp/with "quotes" and \ and ümlaut.db`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "new", "ringlet", "config.toml")
			if err := Save(path, &tt.c); err != nil {
				t.Fatalf("Save: %v", err)
			}
			got, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if *got != tt.c {
				t.Errorf("Load after Save: got %+v, want %+v", *got, tt.c)
			}
			fi, err := os.Stat(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o700 {
				t.Errorf("config dir mode: got %04o, want 0700", got)
			}
			entries, err := os.ReadDir(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != "config.toml" {
				t.Errorf("config dir: got %d entries, want only config.toml", len(entries))
			}
		})
	}
}

func TestSaveOmitsUnsetKeys(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := Save(path, &Config{Credentials: CredentialsConfig{Backend: "file"}}); err != nil {
		t.Fatalf("Save: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"daemon", "audit", "listen"} {
		if strings.Contains(string(data), absent) {
			t.Errorf("saved file %q contains %q, want only the keys that are set", data, absent)
		}
	}
}

func TestSaveRefusesInvalid(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.toml")
	err := Save(path, &Config{Daemon: DaemonConfig{LogLevel: "loud"}})
	if err == nil {
		t.Fatalf("Save of an invalid config: got nil error, want one")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file after a refused Save: got stat error %v, want not exist", err)
	}
}

// TestSaveModeUnderUmask changes the process umask, so it must not run in
// parallel with tests that create files.
func TestSaveModeUnderUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "ringlet")
	path := filepath.Join(dir, "config.toml")
	for i, c := range []Config{{}, {Daemon: DaemonConfig{LogLevel: "warn"}}} {
		if err := Save(path, &c); err != nil {
			t.Fatalf("Save %d: %v", i, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("config file mode after save %d under umask 0: got %04o, want 0600", i, got)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("config dir mode under umask 0: got %04o, want 0700", got)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		want    Config
		wantErr []string
	}{
		{name: "missing file is empty", path: filepath.Join(dir, "missing.toml")},
		{name: "valid", path: write("valid.toml", "[daemon]\nlog_level = \"warn\"\n"), want: Config{Daemon: DaemonConfig{LogLevel: "warn"}}},
		{name: "unknown key names file and line", path: write("bad.toml", "\n[daemon]\nnope = 1\n"), wantErr: []string{"bad.toml", "line 3", "daemon.nope"}},
		{name: "too large", path: write("big.toml", "#"+strings.Repeat("x", maxFileSize)+"\n"), wantErr: []string{"big.toml", "1 MiB"}},
		{name: "directory", path: dir, wantErr: []string{dir}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(tt.path)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Load: got %+v, nil error; want an error", c)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error: got %q, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: got error %v, want nil", err)
			}
			if *c != tt.want {
				t.Errorf("Load: got %+v, want %+v", *c, tt.want)
			}
		})
	}
}
