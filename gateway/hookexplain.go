package gateway

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/provider"
)

// maxShownCommand bounds a hook's command as a denial shows it.
const maxShownCommand = 120

// shownCommand is a hook's command as a denial shows it: one line, clipped.
func shownCommand(shell string) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(strings.TrimSpace(shell), "\uFFFD"))
	if len(s) > maxShownCommand {
		cut := maxShownCommand
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut-- // never split a character
		}
		s = s[:cut] + "…"
	}
	return s
}

// explainDenial is what the agent and the tool.call record are told of a
// hook's refusal: the hook's own reason (its first line of stderr, or what
// Ringlet says of it), which hook it was (id and command), its exit code,
// and how the user changes it. One line: agents show the first.
// command is the hook's as commandOf shows it.
func explainDenial(alias string, d hook.Decision, command string) string {
	if d.Allow || d.HookID == "" {
		return d.Reason
	}
	var b strings.Builder
	b.WriteString(d.Reason)
	b.WriteString(" [refused by Ringlet hook ")
	b.WriteString(d.HookID)
	if command != "" {
		b.WriteString(" (")
		b.WriteString(command)
		b.WriteString(")")
	}
	b.WriteString(" of profile ")
	b.WriteString(alias)
	if d.ExitCode >= 0 {
		b.WriteString(", exit ")
		b.WriteString(strconv.Itoa(d.ExitCode))
	}
	b.WriteString("; the user can see it with 'ringlet hooks list ")
	b.WriteString(alias)
	b.WriteString("', try a change with 'ringlet hooks test ")
	b.WriteString(alias)
	b.WriteString(" --hook FILE' and remove it with 'ringlet hooks remove ")
	b.WriteString(alias)
	b.WriteString(" ")
	b.WriteString(d.HookID)
	b.WriteString("']")
	return b.String()
}

// commandOf is the command of hook id as a denial shows it (shownCommand),
// scrubbed: a command may hold what scrub takes out; "" when no hook has id.
func (hk *hooks) commandOf(sess *session, alias string, hooks []hook.Hook, id string) string {
	for _, h := range hooks {
		if h.ID == id {
			return shownCommand(hk.scrub(sess, alias, h.Shell))
		}
	}
	return ""
}

// scrub takes out of text a hook wrote (its stderr) every form of the
// session's provider key, the daemon's admin token and what profile
// alias's MCP servers were given, before the agent or the audit log sees
// it: a hook runs as the user and can read them all.
func (hk *hooks) scrub(sess *session, alias, text string) string {
	if text == "" {
		return text
	}
	if sess != nil && !sess.key.IsZero() {
		text = provider.RedactString(text, sess.key.Reveal())
	}
	if hk.o.MCPRedact != nil {
		text = hk.o.MCPRedact(alias, text)
	}
	if hk.o.Auth != nil {
		text = redactAdminToken(hk.o.Auth, text)
	}
	return text
}

// redactAdminToken replaces the admin token (64 hex digits, compared by
// hash as authentication does, in either case) wherever it appears in
// text, also inside a longer run of hex digits ("%20" before it, another
// hex word after it), with [redacted].
func redactAdminToken(a *authenticator, text string) string {
	const n = 64
	isHex := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
	var out strings.Builder
	last := 0
	for i := 0; i < len(text); {
		if !isHex(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isHex(text[j]) {
			j++
		}
		// Every window of n digits in the run [i, j); the text is a
		// hook's bounded output.
		for k := i; k+n <= j; {
			if _, ok := a.check(strings.ToLower(text[k : k+n])); ok {
				out.WriteString(text[last:k])
				out.WriteString(provider.Redacted)
				last = k + n
				k += n
				continue
			}
			k++
		}
		i = j
	}
	if last == 0 {
		return text
	}
	out.WriteString(text[last:])
	return out.String()
}
