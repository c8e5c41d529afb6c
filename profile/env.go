package profile

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/neullabs/ringlet/provider"
)

// Launch is what an agent needs to reach its provider through Ringlet.
type Launch struct {
	Command []string `json:"command"`
	Args    []string `json:"args,omitempty"`
	Env     []EnvVar `json:"env"`
}

// EnvVar is one environment variable.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// The variables every session's agent gets from the daemon, whatever its
// catalog entry says ('profiles env' prints them, 'profiles run' sets
// them): how Ringlet's own commands run by the agent ('ringlet mcp
// --stdio', the Claude Code hook) know the session they run for. Where
// any of them is set, those commands act for that session alone and never
// with the admin token.
const (
	// EnvSession is the session's id.
	EnvSession = "RINGLET_SESSION"
	// EnvSessionToken is the session token.
	EnvSessionToken = "RINGLET_SESSION_TOKEN"
	// EnvSessionURL is where the agent reaches the daemon's session
	// routes (/mcp, /session, /proxy/...): the daemon's own address, or
	// the forwarder inside the agent's sandbox.
	EnvSessionURL = "RINGLET_SESSION_URL"
)

// SessionEnv are the Ringlet variables of session id, whose token is
// token, for an agent that reaches the daemon's session routes at url.
func SessionEnv(id, url, token string) []EnvVar {
	return []EnvVar{{EnvSession, id}, {EnvSessionToken, token}, {EnvSessionURL, url}}
}

// LaunchFor fills the agent's templates for a session: baseURL is where
// the agent sends provider requests (the daemon's /proxy), token is the
// session token that stands in for the key, home the profile's HOME;
// {format} is the provider's wire format. The agent's SandboxArgs follow
// its Args when sandboxed says it runs in Ringlet's sandbox.
//
// The session's own variables (SessionEnv) are the caller's to add with
// WithSession: they name the session, which the catalog does not know.
func (a Agent) LaunchFor(p Profile, prov Provider, baseURL, token, home string, sandboxed bool) Launch {
	fill := func(s string) (string, bool) {
		if strings.Contains(s, "{model}") && p.Model == "" {
			return "", false
		}
		r := strings.NewReplacer("{base_url}", baseURL, "{token}", token, "{model}", p.Model, "{home}", home, "{format}", prov.Format)
		return r.Replace(s), true
	}
	env := map[string]string{}
	if a.StandardEnv {
		switch prov.Format {
		case provider.FormatAnthropic:
			env["ANTHROPIC_BASE_URL"], env["ANTHROPIC_API_KEY"] = baseURL, token
			if p.Model != "" {
				env["ANTHROPIC_MODEL"] = p.Model
			}
		case provider.FormatOpenAI:
			env["OPENAI_BASE_URL"], env["OPENAI_API_KEY"] = baseURL, token
			if p.Model != "" {
				env["OPENAI_MODEL"] = p.Model
			}
		}
	}
	for k, v := range a.Env {
		if fv, ok := fill(v); ok {
			env[k] = fv
		}
	}
	for name, members := range a.JSONEnv {
		obj := map[string]string{}
		for k, v := range members {
			if fv, ok := fill(v); ok {
				obj[k] = fv
			}
		}
		if len(obj) == 0 {
			continue
		}
		b, err := json.Marshal(obj)
		if err != nil {
			continue // a map of strings always encodes
		}
		env[name] = string(b)
	}
	l := Launch{Command: a.Command}
	if len(p.Command) > 0 {
		l.Command = p.Command
	}
	args := a.Args
	if sandboxed {
		args = append(append([]string{}, a.Args...), a.SandboxArgs...)
	}
	// Args come in flag/value pairs in the catalog ("-c", "x={model}");
	// a pair whose value needs a missing model is dropped whole.
	for i := 0; i < len(args); i++ {
		v, ok := fill(args[i])
		if !ok {
			if i > 0 && strings.HasPrefix(args[i-1], "-") && len(l.Args) > 0 {
				l.Args = l.Args[:len(l.Args)-1]
			}
			continue
		}
		l.Args = append(l.Args, v)
	}
	l.Env = sortedEnv(env)
	return l
}

// WithSession adds the session's variables (SessionEnv) to l's
// environment, in place of any the catalog set under those names, and
// keeps it sorted by name.
func (l Launch) WithSession(vars []EnvVar) Launch {
	env := map[string]string{}
	for _, e := range l.Env {
		env[e.Name] = e.Value
	}
	for _, e := range vars {
		env[e.Name] = e.Value
	}
	l.Env = sortedEnv(env)
	return l
}

func sortedEnv(env map[string]string) []EnvVar {
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []EnvVar
	for _, k := range names {
		out = append(out, EnvVar{k, env[k]})
	}
	return out
}
