// Package names holds the one rule for the names people give things in
// Ringlet: profiles, providers and key aliases. A name is also a file name
// (a profile's file, its HOME, its hooks) and part of a keychain account,
// so the rule admits nothing that could climb out of a directory or be
// mistaken for an option.
package names

import "fmt"

// Pattern is the rule, without anchors, for building larger patterns
// (provider/alias, a JSON schema's pattern).
const Pattern = `[a-z0-9][a-z0-9._-]{0,63}`

// Valid reports whether name follows the rule (Pattern, anchored). It is
// on every tool call's path (each per-profile file it reads checks its
// name), so it is a loop rather than a regexp; FuzzCheck holds the two
// to the same answers.
func Valid(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// Check refuses a name that does not follow the rule; what says what it
// names ("profile", "provider", "alias") in the message.
func Check(what, name string) error {
	if !Valid(name) {
		return fmt.Errorf("invalid %s name %q: use 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", what, name)
	}
	return nil
}
