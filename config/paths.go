// Package config holds Ringlet's typed configuration: where its files live
// (the XDG base directories) and the validated keys of config.toml.
//
// Nothing below cmd reads the environment; cmd resolves Paths once and
// passes them down.
package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Paths are the directories Ringlet keeps its files in.
type Paths struct {
	Home      string // the user's home, for ~ expansion
	ConfigDir string // $XDG_CONFIG_HOME/ringlet: config, token, credentials
	StateDir  string // $XDG_STATE_HOME/ringlet: log, audit, daemon state
	DataDir   string // $XDG_DATA_HOME/ringlet: profile homes
}

// PathsFromEnv resolves Paths from HOME and the XDG variables, read through
// getenv. Relative XDG values are ignored, as the XDG spec requires.
func PathsFromEnv(getenv func(string) string) (Paths, error) {
	home := getenv("HOME")
	dir := func(env, fallback string) (string, error) {
		if v := getenv(env); filepath.IsAbs(v) {
			return filepath.Join(filepath.Clean(v), "ringlet"), nil
		}
		if !filepath.IsAbs(home) {
			return "", fmt.Errorf("cannot find a directory for Ringlet's files: set HOME (or %s) to an absolute path", env)
		}
		return filepath.Join(home, fallback, "ringlet"), nil
	}
	var p Paths
	var err, e error
	p.Home = home
	p.ConfigDir, e = dir("XDG_CONFIG_HOME", ".config")
	err = errors.Join(err, e)
	p.StateDir, e = dir("XDG_STATE_HOME", filepath.Join(".local", "state"))
	err = errors.Join(err, e)
	p.DataDir, e = dir("XDG_DATA_HOME", filepath.Join(".local", "share"))
	err = errors.Join(err, e)
	if err != nil {
		return Paths{}, err
	}
	return p, nil
}

// ConfigFile is config.toml.
func (p Paths) ConfigFile() string { return filepath.Join(p.ConfigDir, "config.toml") }

// TokenFile holds the daemon's bearer token.
func (p Paths) TokenFile() string { return filepath.Join(p.ConfigDir, "http_token") }

// LogFile is where a detached daemon writes its JSON log.
func (p Paths) LogFile() string { return filepath.Join(p.StateDir, "daemon.log") }

// StateFile records the running daemon's pid and address for the CLI.
func (p Paths) StateFile() string { return filepath.Join(p.StateDir, "daemon.json") }

// LockFile is held by the running daemon so only one runs per user.
func (p Paths) LockFile() string { return filepath.Join(p.StateDir, "daemon.lock") }

// SessionsDir keeps the sessions that outlive a restart of the daemon,
// one file each (package sessionstore).
func (p Paths) SessionsDir() string { return filepath.Join(p.StateDir, "sessions") }

// LegacySessionsFile is where earlier versions kept those sessions, all
// in one file; the store moves them into SessionsDir on its first use.
func (p Paths) LegacySessionsFile() string { return filepath.Join(p.StateDir, "sessions.json") }

// PricesFile is the price table 'ringlet prices import' stored, over the
// embedded one.
func (p Paths) PricesFile() string { return filepath.Join(p.DataDir, "prices.json") }

// DefaultAuditPath is the audit database unless audit.path says otherwise.
func (p Paths) DefaultAuditPath() string { return filepath.Join(p.StateDir, "audit.db") }

// ExpandHome replaces a leading ~ or ~/ with the home directory, so paths
// typed in config or flags work as they do in a shell.
func (p Paths) ExpandHome(path string) (string, error) {
	if path != "~" && !strings.HasPrefix(path, "~/") {
		return path, nil
	}
	if !filepath.IsAbs(p.Home) {
		return "", fmt.Errorf("cannot expand ~ in %q: HOME is not set", path)
	}
	return filepath.Join(p.Home, strings.TrimPrefix(path, "~")), nil
}
