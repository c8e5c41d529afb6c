package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/neullabs/ringlet/privatefile"
)

// Config is the content of config.toml. Empty fields take their defaults;
// only keys the user set are written back.
type Config struct {
	Daemon      DaemonConfig      `toml:"daemon"`
	Credentials CredentialsConfig `toml:"credentials"`
	Audit       AuditConfig       `toml:"audit"`
	Proxy       ProxyConfig       `toml:"proxy"`
	Sessions    SessionsConfig    `toml:"sessions"`
	OTel        OTelConfig        `toml:"otel"`
}

// OTelConfig is the [otel] table: OpenTelemetry export of the audit
// trail (docs/telemetry.md). Off while Endpoint is empty.
type OTelConfig struct {
	Endpoint string `toml:"endpoint"`
	Protocol string `toml:"protocol"`
	// Headers names credentials, never values: NAME=[SCHEME ]<provider>/<alias>,
	// comma-separated; the daemon reads the values from the credential
	// store when it starts.
	Headers string `toml:"headers"`
	Content string `toml:"content"`
}

// SessionsConfig is the [sessions] table.
type SessionsConfig struct {
	IdleTimeout  string `toml:"idle_timeout"`
	MaxTTL       string `toml:"max_ttl"`
	RestartGrace string `toml:"restart_grace"`
}

// DaemonConfig is the [daemon] table.
type DaemonConfig struct {
	Listen      string `toml:"listen"`
	IdleTimeout string `toml:"idle_timeout"`
	LogLevel    string `toml:"log_level"`
}

// CredentialsConfig is the [credentials] table.
type CredentialsConfig struct {
	Backend string `toml:"backend"`
}

// AuditConfig is the [audit] table.
// ProxyConfig is the [proxy] table.
type ProxyConfig struct {
	IdleTimeout           string `toml:"idle_timeout"`
	ResponseHeaderTimeout string `toml:"response_header_timeout"`
}

// AuditConfig is the [audit] table.
type AuditConfig struct {
	Path string `toml:"path"`
	Sync string `toml:"sync"`
}

// DefaultListen is the daemon's address unless daemon.listen says otherwise.
const DefaultListen = "127.0.0.1:8765"

// Key describes one config key.
type Key struct {
	Name    string
	Help    string
	Allowed []string // the accepted values, when they are a fixed set
	def     func(Paths) string
	field   func(*Config) *string
	check   func(string) error
}

// Default returns the key's value when it is not set.
func (k Key) Default(p Paths) string { return k.def(p) }

// Keys lists every config key, in the order `config list` shows them.
var Keys = []Key{
	{
		Name:  "daemon.listen",
		Help:  "address the daemon listens on; loopback only (use --listen for anything else)",
		def:   func(Paths) string { return DefaultListen },
		field: func(c *Config) *string { return &c.Daemon.Listen },
		check: func(v string) error { _, err := ParseListen(v, false); return err },
	},
	{
		Name:  "daemon.idle_timeout",
		Help:  "how long a daemon started without --stay-alive waits with no requests and no sessions before it exits (0 = never)",
		def:   func(Paths) string { return "10m" },
		field: func(c *Config) *string { return &c.Daemon.IdleTimeout },
		check: func(v string) error { _, err := parseIdle(v); return err },
	},
	{
		Name:    "daemon.log_level",
		Help:    "daemon log level",
		Allowed: []string{"debug", "info", "warn", "error"},
		def:     func(Paths) string { return "info" },
		field:   func(c *Config) *string { return &c.Daemon.LogLevel },
	},
	{
		Name:    "credentials.backend",
		Help:    "where provider keys are stored: the OS keyring, the 0600 file, or auto (keyring when reachable)",
		Allowed: []string{"auto", "keyring", "file"},
		def:     func(Paths) string { return "auto" },
		field:   func(c *Config) *string { return &c.Credentials.Backend },
	},
	{
		Name:  "audit.path",
		Help:  "the SQLite audit database (absolute or ~/ path)",
		def:   func(p Paths) string { return p.DefaultAuditPath() },
		field: func(c *Config) *string { return &c.Audit.Path },
		check: checkPath,
	},
	{
		Name:    "audit.sync",
		Help:    "normal: a committed record survives a crash of the daemon; full: it also survives power loss (an fsync per batch)",
		Allowed: []string{"normal", "full"},
		def:     func(Paths) string { return "normal" },
		field:   func(c *Config) *string { return &c.Audit.Sync },
	},
	{
		Name:  "proxy.idle_timeout",
		Help:  "end a provider answer that sends nothing for this long (0 = never); streams have no overall limit",
		def:   func(Paths) string { return "5m" },
		field: func(c *Config) *string { return &c.Proxy.IdleTimeout },
		check: func(v string) error { _, err := parseIdle(v); return err },
	},
	{
		Name:  "proxy.response_header_timeout",
		Help:  "answer 504 when a provider has not begun its answer (sent response headers) this long after the request was forwarded (0 = never)",
		def:   func(Paths) string { return DefaultProxyResponseHeaderTimeout },
		field: func(c *Config) *string { return &c.Proxy.ResponseHeaderTimeout },
		check: func(v string) error { _, err := parseIdle(v); return err },
	},
	{
		Name:  "sessions.idle_timeout",
		Help:  "end a session no launcher holds ('profiles env') after this long with no request; each request renews it, up to sessions.max_ttl (0 = never)",
		def:   func(Paths) string { return DefaultSessionIdle },
		field: func(c *Config) *string { return &c.Sessions.IdleTimeout },
		check: func(v string) error { _, err := parseSessionIdle(v); return err },
	},
	{
		Name:  "sessions.max_ttl",
		Help:  "the longest a session lives unless it was started with --ttl",
		def:   func(Paths) string { return DefaultSessionMaxTTL },
		field: func(c *Config) *string { return &c.Sessions.MaxTTL },
		check: func(v string) error { _, err := parseSessionTTL(v); return err },
	},
	{
		Name:  "sessions.restart_grace",
		Help:  "how long after a restart of the daemon the launcher of a 'profiles run' session kept by a graceful stop has to hold it again (0 = such sessions end when the daemon stops)",
		def:   func(Paths) string { return DefaultRestartGrace },
		field: func(c *Config) *string { return &c.Sessions.RestartGrace },
		check: func(v string) error { _, err := parseRestartGrace(v); return err },
	},
	{
		Name:  "otel.endpoint",
		Help:  "export the audit trail as OpenTelemetry traces and logs to this OTLP collector (http:// or https:// URL; empty = off)",
		def:   func(Paths) string { return "" },
		field: func(c *Config) *string { return &c.OTel.Endpoint },
		check: func(v string) error { _, err := ParseOTelEndpoint(v); return err },
	},
	{
		Name:    "otel.protocol",
		Help:    "OTLP over http (protobuf; the URL's path is the base of /v1/traces and /v1/logs) or grpc",
		Allowed: []string{"http", "grpc"},
		def:     func(Paths) string { return "http" },
		field:   func(c *Config) *string { return &c.OTel.Protocol },
	},
	{
		Name:  "otel.headers",
		Help:  "headers sent to the collector, each NAME=[SCHEME ]<provider>/<alias> naming a stored credential ('ringlet keychain set otel NAME'), comma-separated; the value is read from the credential store when the daemon starts",
		def:   func(Paths) string { return "" },
		field: func(c *Config) *string { return &c.OTel.Headers },
		check: func(v string) error { _, err := ParseOTelHeaders(v); return err },
	},
	{
		Name:    "otel.content",
		Help:    "digests: spans and logs carry the audit records' fields and sha256 digests and sizes of their details; full: the details too",
		Allowed: []string{"digests", "full"},
		def:     func(Paths) string { return "digests" },
		field:   func(c *Config) *string { return &c.OTel.Content },
	},
}

// The defaults of sessions.idle_timeout and sessions.max_ttl. A session
// started with 'profiles env' lives as long as it is used, and a work day
// at most: a lunch break does not end it, a forgotten one ends within two
// hours.
const (
	DefaultSessionIdle   = "2h"
	DefaultSessionMaxTTL = "12h"
	// DefaultRestartGrace leaves an upgrade time to stop one binary and
	// start the next.
	DefaultRestartGrace = "2m"
)

// DefaultProxyResponseHeaderTimeout is the default of
// proxy.response_header_timeout. A provider sends the headers of a
// streamed answer at once, but those of a plain (non-streaming) answer
// only when the whole answer is ready, which for a long answer takes
// minutes: the Anthropic and OpenAI SDKs wait 10 minutes by default (and
// the Anthropic SDK refuses a non-streaming request it expects to take
// longer). So Ringlet waits as long as the clients do, and no longer.
const DefaultProxyResponseHeaderTimeout = "10m"

// LookupKey finds a key by name.
func LookupKey(name string) (Key, error) {
	for _, k := range Keys {
		if k.Name == name {
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("unknown config key %q; known keys: %s", name, strings.Join(keyNames(), ", "))
}

func keyNames() []string {
	names := make([]string, len(Keys))
	for i, k := range Keys {
		names[i] = k.Name
	}
	return names
}

// ValidateValue checks value for the key.
func (k Key) ValidateValue(value string) error {
	if k.Allowed != nil && !slices.Contains(k.Allowed, value) {
		return fmt.Errorf("invalid value %q for %s; accepted values: %s", value, k.Name, strings.Join(k.Allowed, ", "))
	}
	if k.check != nil {
		if err := k.check(value); err != nil {
			return fmt.Errorf("invalid value %q for %s: %w", value, k.Name, err)
		}
	}
	return nil
}

// Get returns the value set in c for the key and whether it is set.
func (k Key) Get(c *Config) (string, bool) {
	v := *k.field(c)
	return v, v != ""
}

// Set stores value for the key after validating it.
func (k Key) Set(c *Config, value string) error {
	if err := k.ValidateValue(value); err != nil {
		return err
	}
	*k.field(c) = value
	return nil
}

// Unset removes the key so its default applies.
func (k Key) Unset(c *Config) { *k.field(c) = "" }

// Validate checks every key that is set, and the keys that depend on
// each other.
func (c *Config) Validate() error {
	var errs []error
	for _, k := range Keys {
		if v, ok := k.Get(c); ok {
			errs = append(errs, k.ValidateValue(v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := c.checkOTel(); err != nil {
		return err
	}
	if idle, ttl := c.SessionIdle(), c.SessionMaxTTL(); idle > ttl {
		return fmt.Errorf("sessions.idle_timeout (%s) is longer than sessions.max_ttl (%s), so it would never end a session; lower it or raise sessions.max_ttl first", idle, ttl)
	}
	return nil
}

// Listen is the effective daemon.listen.
func (c *Config) Listen() string { return or(c.Daemon.Listen, DefaultListen) }

// IdleTimeout is the effective daemon.idle_timeout.
func (c *Config) IdleTimeout() time.Duration {
	d, _ := parseIdle(or(c.Daemon.IdleTimeout, "10m"))
	return d
}

// LogLevel is the effective daemon.log_level.
func (c *Config) LogLevel() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(or(c.Daemon.LogLevel, "info")))
	return l
}

// ProxyIdleTimeout is the effective proxy.idle_timeout.
func (c *Config) ProxyIdleTimeout() time.Duration {
	d, _ := parseIdle(or(c.Proxy.IdleTimeout, "5m"))
	return d
}

// ProxyResponseHeaderTimeout is the effective
// proxy.response_header_timeout.
func (c *Config) ProxyResponseHeaderTimeout() time.Duration {
	d, _ := parseIdle(or(c.Proxy.ResponseHeaderTimeout, DefaultProxyResponseHeaderTimeout))
	return d
}

// SessionIdle is the effective sessions.idle_timeout; 0 means never.
func (c *Config) SessionIdle() time.Duration {
	d, _ := parseSessionIdle(or(c.Sessions.IdleTimeout, DefaultSessionIdle))
	return d
}

// SessionMaxTTL is the effective sessions.max_ttl.
func (c *Config) SessionMaxTTL() time.Duration {
	d, _ := parseSessionTTL(or(c.Sessions.MaxTTL, DefaultSessionMaxTTL))
	return d
}

// AuditSync is the effective audit.sync.
func (c *Config) AuditSync() string { return or(c.Audit.Sync, "normal") }

// AuditPath is the effective audit.path, with ~ expanded.
func (c *Config) AuditPath(p Paths) (string, error) {
	if c.Audit.Path == "" {
		return p.DefaultAuditPath(), nil
	}
	return p.ExpandHome(c.Audit.Path)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func parseIdle(v string) (time.Duration, error) {
	if v == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New("want a duration such as 10m, 1h30m or 0 for never")
	}
	if d > 0 && d < time.Second {
		return 0, errors.New("want at least 1s, or 0 for never")
	}
	return d, nil
}

// parseSessionTTL reads a session lifetime: from 1m to 720h, the range
// 'profiles env --ttl' takes.
func parseSessionTTL(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Minute || d > 720*time.Hour {
		return 0, errors.New("want a duration from 1m to 720h, such as 12h")
	}
	return d, nil
}

// RestartGrace is the effective sessions.restart_grace; 0 means run
// sessions end when the daemon stops.
func (c *Config) RestartGrace() time.Duration {
	d, _ := parseRestartGrace(or(c.Sessions.RestartGrace, DefaultRestartGrace))
	return d
}

// parseRestartGrace reads sessions.restart_grace: 0, or from 1s to 1h.
func parseRestartGrace(v string) (time.Duration, error) {
	if v == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second || d > time.Hour {
		return 0, errors.New("want a duration from 1s to 1h, such as 2m, or 0 to end run sessions when the daemon stops")
	}
	return d, nil
}

// parseSessionIdle reads a session idle timeout: 0 for never, or a
// session lifetime.
func parseSessionIdle(v string) (time.Duration, error) {
	if v == "0" {
		return 0, nil
	}
	d, err := parseSessionTTL(v)
	if err != nil {
		return 0, errors.New("want a duration from 1m to 720h, such as 2h, or 0 for never")
	}
	return d, nil
}

func checkPath(v string) error {
	if strings.ContainsAny(v, "\x00\n\r") {
		return errors.New("a path cannot contain NUL or newlines")
	}
	if v != "~" && !strings.HasPrefix(v, "~/") && !filepath.IsAbs(v) {
		return errors.New("want an absolute path or one starting with ~/")
	}
	return nil
}

// Listen describes a parsed listen address.
type Listen struct {
	Host     string // as written: an IP literal or localhost; empty means every interface
	Port     int
	Loopback bool
}

// Addr is the address to pass to net.Listen.
func (l Listen) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// ParseListen parses a HOST:PORT listen address. Unless explicit is true
// (the user typed --listen), a non-loopback address is refused.
func ParseListen(addr string, explicit bool) (Listen, error) {
	const want = "want HOST:PORT such as 127.0.0.1:8765, where HOST is an IP address or localhost"
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Listen{}, fmt.Errorf("invalid listen address %q: %s", addr, want)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return Listen{}, fmt.Errorf("invalid listen address %q: port must be a number from 0 to 65535", addr)
	}
	l := Listen{Host: host, Port: n}
	switch {
	case strings.EqualFold(host, "localhost"):
		l.Host, l.Loopback = "localhost", true
	case host == "":
	default:
		ip := net.ParseIP(host)
		if ip == nil || strings.Contains(host, "%") {
			return Listen{}, fmt.Errorf("invalid listen address %q: %s", addr, want)
		}
		l.Loopback = ip.IsLoopback()
	}
	if !l.Loopback && !explicit {
		return Listen{}, fmt.Errorf("%q is not a loopback address; the daemon binds only 127.0.0.1, ::1 or localhost unless you pass --listen explicitly", addr)
	}
	return l, nil
}

// maxFileSize bounds config.toml; a larger file is a mistake, not a config.
const maxFileSize = 1 << 20

// Load reads config.toml. A missing file is an empty config. Unknown keys,
// malformed TOML and invalid values are errors that name the file and line.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config file %s: %w", path, privatefile.WithoutPath(err))
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("config file %s is larger than 1 MiB; it is not a ringlet config", path)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates config TOML.
func Parse(data []byte) (*Config, error) {
	var c Config
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) && len(strict.Errors) > 0 {
			e := strict.Errors[0]
			row, _ := e.Position()
			return nil, fmt.Errorf("line %d: unknown key %q; known keys: %s", row, strings.Join(e.Key(), "."), strings.Join(keyNames(), ", "))
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("line %d column %d: %s; fix the file or remove it to use the defaults", row, col, de.Error())
		}
		return nil, fmt.Errorf("%s; fix the file or remove it to use the defaults", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Marshal encodes the keys that are set, grouped by table.
func (c *Config) Marshal() ([]byte, error) {
	tables := map[string]map[string]string{}
	for _, k := range Keys {
		v, ok := k.Get(c)
		if !ok {
			continue
		}
		table, name, _ := strings.Cut(k.Name, ".")
		if tables[table] == nil {
			tables[table] = map[string]string{}
		}
		tables[table][name] = v
	}
	return toml.Marshal(tables)
}

// Save writes c to path atomically, creating the 0700 config directory if
// needed. The file holds no secrets but is kept private all the same.
func Save(path string, c *Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	data, err := c.Marshal()
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	if err := privatefile.EnsureDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("config directory: %w", err)
	}
	return privatefile.WriteAtomic(path, data, privatefile.FileMode)
}
