package profile

import (
	"errors"
	"fmt"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// ParseCommand splits a command line typed as one string (the generic
// agent's --command) into its words, the way a POSIX shell would split and
// unquote it: 'sh -c "echo hi there"' is three words. It only splits and
// unquotes. What a shell would expand or run ($VAR, $(cmd), `cmd`, globs,
// braces, ~, redirections, pipes, ; and &) is refused with the reason, not
// kept literally, since a user who writes $HOME means their home, and not
// expanded, since the command runs later, elsewhere, in a sandbox whose
// HOME and files differ. Run a shell on purpose when one is wanted:
// sh -c '...'.
func ParseCommand(s string) ([]string, error) {
	if strings.ContainsRune(s, 0) {
		return nil, errors.New("the command contains a NUL byte")
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX), syntax.KeepComments(true)).Parse(strings.NewReader(s), "")
	if err != nil {
		var pe syntax.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s at column %d; quote it as you would for sh", pe.Text, pe.Pos.Col())
		}
		return nil, err
	}
	switch {
	case len(f.Stmts) == 0 && len(f.Last) > 0:
		return nil, errors.New("the command is only a comment")
	case len(f.Stmts) == 0:
		return nil, errors.New("the command is empty")
	case len(f.Stmts) > 1:
		return nil, errors.New("more than one command (; & or a newline); run a shell for that: sh -c '...'")
	}
	st := f.Stmts[0]
	call, ok := st.Cmd.(*syntax.CallExpr)
	switch {
	case len(st.Comments) > 0 || len(f.Last) > 0:
		return nil, errors.New("# starts a comment here; quote it if it is part of an argument")
	case !ok || st.Negated || st.Background || st.Coprocess || st.Semicolon.IsValid():
		return nil, errors.New("not a simple command (a pipe, && or ||, a subshell or a control word); run a shell for that: sh -c '...'")
	case len(st.Redirs) > 0:
		return nil, errors.New("redirections (<, >) are not supported; run a shell for that: sh -c '...'")
	case len(call.Assigns) > 0:
		return nil, errors.New("variable assignments (NAME=value before the command) are not supported; use env NAME=value ...")
	}
	words := make([]string, 0, len(call.Args))
	for _, w := range call.Args {
		word, err := literal(w)
		if err != nil {
			return nil, fmt.Errorf("word %d: %w", len(words)+1, err)
		}
		words = append(words, word)
	}
	return words, nil
}

// literal unquotes a word made only of literal text, single- and double-
// quoted strings, or says which expansion it holds.
func literal(w *syntax.Word) (string, error) {
	var b strings.Builder
	for i, part := range w.Parts {
		switch p := part.(type) {
		case *syntax.Lit:
			if i == 0 && strings.HasPrefix(p.Value, "~") {
				return "", errors.New("~ is not expanded; write the full path, or quote it ('~') to pass it as it is")
			}
			if err := unquoted(&b, p.Value); err != nil {
				return "", err
			}
		case *syntax.SglQuoted:
			if p.Dollar {
				return "", errors.New("$'...' is not supported; use '...'")
			}
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			if p.Dollar {
				return "", errors.New(`$"..." is not supported; use "..."`)
			}
			for _, in := range p.Parts {
				lit, ok := in.(*syntax.Lit)
				if !ok {
					return "", expansion(in)
				}
				doubleQuoted(&b, lit.Value)
			}
		default:
			return "", expansion(part)
		}
	}
	return b.String(), nil
}

// expansion says why a word part is refused.
func expansion(part syntax.WordPart) error {
	var what string
	switch part.(type) {
	case *syntax.ParamExp:
		what = "$VARIABLE"
	case *syntax.CmdSubst:
		what = "$(command) or `command`"
	case *syntax.ArithmExp:
		what = "$((arithmetic))"
	default:
		what = "a shell expansion"
	}
	return fmt.Errorf("%s would be expanded by a shell, and Ringlet does not expand it: write the value itself, or put it in single quotes to pass it as it is", what)
}

// unquoted writes text outside quotes: a backslash escapes the next
// character; *, ?, [, { and $ are the starts of expansions.
func unquoted(b *strings.Builder, s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 < len(s) {
				i++
				c = s[i]
			}
		case '*', '?', '[':
			return fmt.Errorf("%q is a glob that a shell would expand; put it in single quotes to pass it as it is", string(c))
		case '{':
			return errors.New(`"{" starts a brace expansion in some shells; put it in single quotes to pass it as it is`)
		case '$':
			return errors.New(`"$" starts an expansion; put it in single quotes to pass it as it is`)
		}
		b.WriteByte(c)
	}
	return nil
}

// doubleQuoted writes the literal text inside "...", where a backslash
// escapes only $, `, ", \ and a newline.
func doubleQuoted(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '$', '`', '"', '\\':
				i++
				c = s[i]
			case '\n':
				i++
				continue
			}
		}
		b.WriteByte(c)
	}
}

// QuoteCommand joins words into one string that ParseCommand splits back
// into the same words, quoting only the words that need it.
func QuoteCommand(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = quoteWord(w, i == 0)
	}
	return strings.Join(out, " ")
}

// quoteWord quotes w unless it is plain; in the first word, = is not
// plain, since NAME=value there is an assignment.
func quoteWord(w string, first bool) string {
	if w == "" {
		return "''"
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		plain := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-+.,/:@%", c) >= 0 || c == '=' && !first
		if !plain {
			return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return w
}
