package cli

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/profile"
)

// agentSession is the Ringlet session an environment belongs to: the one
// whose variables 'profiles env' printed or 'profiles run' set for its
// agent. A command the agent runs that acts for it ('ringlet mcp
// --stdio') acts for that session alone, and never with the admin token.
type agentSession struct {
	ID    string
	Token string
	// URL is the daemon's address as the agent reaches it (the forwarder
	// inside a sandbox); "" when the environment does not say.
	URL string
	// Shown are the variables that show the session, for messages.
	Shown []string
}

// keyVars are the agents' own variables that 'profiles env' and
// 'profiles run' set to the session token, and the base URL variables
// beside them, which end in /proxy.
var (
	keyVars  = []string{"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY"}
	baseVars = []string{"ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"}
)

// agentSessionFromEnv reports whether the environment belongs to a
// session, and which. Any of Ringlet's session variables (even empty)
// shows one, and so does a session token (api.SessionTokenPrefix) in an
// agent's key variable. The token is RINGLET_SESSION_TOKEN when that is
// set at all, else the session token of a key variable; the URL is
// RINGLET_SESSION_URL, else a base URL variable without its /proxy.
func (a *app) agentSessionFromEnv() (agentSession, bool) {
	set := map[string]string{}
	if a.environ != nil {
		for _, kv := range a.environ() {
			k, v, _ := strings.Cut(kv, "=")
			set[k] = v
		}
	}
	var s agentSession
	for _, k := range []string{profile.EnvSession, profile.EnvSessionToken, profile.EnvSessionURL} {
		if _, ok := set[k]; ok {
			s.Shown = append(s.Shown, k)
		}
	}
	s.ID, s.URL = set[profile.EnvSession], set[profile.EnvSessionURL]
	tok, explicit := set[profile.EnvSessionToken]
	for _, k := range keyVars {
		if v := set[k]; strings.HasPrefix(v, api.SessionTokenPrefix) {
			s.Shown = append(s.Shown, k)
			if !explicit && tok == "" {
				tok = v
			}
		}
	}
	s.Token = tok
	if s.URL == "" {
		for _, k := range baseVars {
			if u := strings.TrimSuffix(strings.TrimSuffix(set[k], "/"), "/proxy"); u != set[k] && u != "" {
				s.URL = u
				break
			}
		}
	}
	sort.Strings(s.Shown)
	s.Shown = slices.Compact(s.Shown)
	return s, len(s.Shown) > 0
}

// check refuses a session whose environment holds no session token: the
// command then has nothing to act with, and the admin token is never a
// stand-in for it.
func (s agentSession) check() error {
	shown := strings.Join(s.Shown, ", ")
	switch {
	case s.Token == "":
		return fmt.Errorf("this environment belongs to a Ringlet session (%s is set) but holds no session token (%s): start the agent with 'ringlet profiles run', or in a shell where 'eval \"$(ringlet profiles env PROFILE)\"' ran; a session's command never uses the admin token", shown, profile.EnvSessionToken)
	case !strings.HasPrefix(s.Token, api.SessionTokenPrefix):
		return fmt.Errorf("%s is not a Ringlet session token (they start with %s): start the agent with 'ringlet profiles run', or in a shell where 'eval \"$(ringlet profiles env PROFILE)\"' ran; a session's command never uses the admin token", profile.EnvSessionToken, api.SessionTokenPrefix)
	}
	return nil
}

// errSessionEnded is a session token the daemon no longer knows.
var errSessionEnded = errors.New("the Ringlet session of this environment has ended (revoked, expired, or the daemon restarted): start the agent again with 'ringlet profiles run', or a new session with 'ringlet profiles env'; a session's command never uses the admin token")
