// Package names holds the one rule for the names people give things in
// Ringlet: profiles, providers and key aliases. A name is also a file name
// (a profile's file, its HOME, its hooks) and part of a keychain account,
// so the rule admits nothing that could climb out of a directory or be
// mistaken for an option.
package names

import (
	"fmt"
	"regexp"
)

// Pattern is the rule, without anchors, for building larger patterns
// (provider/alias, a JSON schema's pattern).
const Pattern = `[a-z0-9][a-z0-9._-]{0,63}`

var re = regexp.MustCompile(`^` + Pattern + `$`)

// Valid reports whether name follows the rule.
func Valid(name string) bool { return re.MatchString(name) }

// Check refuses a name that does not follow the rule; what says what it
// names ("profile", "provider", "alias") in the message.
func Check(what, name string) error {
	if !Valid(name) {
		return fmt.Errorf("invalid %s name %q: use 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", what, name)
	}
	return nil
}
