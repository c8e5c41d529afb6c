package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
)

// table prints aligned columns for humans; --json is the stable format.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) *table {
	return &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
}

func (t *table) row(cols ...string) {
	for i, c := range cols {
		cols[i] = printable(c)
	}
	io.WriteString(t.tw, strings.Join(cols, "\t")+"\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// printable escapes control characters so a value cannot move the cursor,
// recolour the terminal or forge a line of output.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u202e' || r == '\u2066' || r == '\u2067' || r == '\u2068' || r == '\u202d' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// listed starts the output of a list command: with asJSON it writes items
// as a JSON array (never null); otherwise, when there are none, the line
// empty. It reports whether the list is done, or a table is still to be
// printed.
func listed[T any](w io.Writer, asJSON bool, items []T, empty string) (done bool, err error) {
	if asJSON {
		if items == nil {
			items = []T{}
		}
		return true, writeJSONOut(w, items)
	}
	if len(items) == 0 {
		_, err := fmt.Fprintln(w, empty)
		return true, err
	}
	return false, nil
}

// mustFlag panics on an error from cobra's flag set-up (a completion, a
// required or hidden flag), which cobra returns only for a flag name the
// command does not have: a typo that every test building the command tree
// hits at once, not something a user can cause.
func mustFlag(err error) {
	if err != nil {
		panic(err)
	}
}
