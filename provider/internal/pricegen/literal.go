package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// literal translates the JavaScript object literals the package is made
// of into JSON: objects whose keys are identifiers or double-quoted
// strings, arrays, double-quoted strings with JSON's escapes, numbers,
// true, false and null, with trailing commas. Anything else (a variable,
// a template string, undefined, a comment inside) is refused, so a change
// of the package's shape fails the generator instead of changing prices.
type literal struct {
	s string
	i int
}

const maxDepth = 64

func (p *literal) fail(what string) error {
	end := min(p.i+20, len(p.s))
	return fmt.Errorf("at byte %d (%q): %s", p.i, p.s[p.i:end], what)
}

func (p *literal) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\n' || p.s[p.i] == '\t' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *literal) value(b *bytes.Buffer, depth int) error {
	if depth > maxDepth {
		return p.fail("nested too deep")
	}
	p.space()
	if p.i >= len(p.s) {
		return p.fail("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(b, depth)
	case c == '[':
		return p.array(b, depth)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return err
		}
		b.WriteString(s)
		return nil
	case c == '-' || c >= '0' && c <= '9':
		j := p.i + 1
		for j < len(p.s) && bytes.IndexByte([]byte("0123456789.eE+-"), p.s[j]) >= 0 {
			j++
		}
		num := p.s[p.i:j]
		if _, err := strconv.ParseFloat(num, 64); err != nil || !json.Valid([]byte(num)) {
			return p.fail("not a JSON number")
		}
		b.WriteString(num)
		p.i = j
		return nil
	default:
		id := p.ident()
		switch id {
		case "true", "false", "null":
			b.WriteString(id)
			return nil
		}
		return p.fail("not a literal")
	}
}

func (p *literal) ident() string {
	j := p.i
	for j < len(p.s) {
		c := p.s[j]
		if c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > p.i && c >= '0' && c <= '9' {
			j++
			continue
		}
		break
	}
	id := p.s[p.i:j]
	p.i = j
	return id
}

// str reads a double-quoted string whose escapes JSON shares.
func (p *literal) str() (string, error) {
	start := p.i
	p.i++
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '\\':
			if p.i+1 >= len(p.s) || bytes.IndexByte([]byte(`"\/bfnrtu`), p.s[p.i+1]) < 0 {
				return "", p.fail("an escape JSON does not have")
			}
			p.i += 2
		case '"':
			p.i++
			s := p.s[start:p.i]
			if !json.Valid([]byte(s)) {
				return "", p.fail("not a JSON string")
			}
			return s, nil
		case '\n':
			return "", p.fail("a line break in a string")
		default:
			p.i++
		}
	}
	return "", p.fail("an unterminated string")
}

func (p *literal) object(b *bytes.Buffer, depth int) error {
	p.i++ // {
	b.WriteByte('{')
	first := true
	for {
		p.space()
		if p.i >= len(p.s) {
			return p.fail("unexpected end in an object")
		}
		if p.s[p.i] == '}' {
			p.i++
			b.WriteByte('}')
			return nil
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		var key string
		if p.s[p.i] == '"' {
			s, err := p.str()
			if err != nil {
				return err
			}
			key = s
		} else {
			id := p.ident()
			if id == "" {
				return p.fail("not a key")
			}
			key = strconv.Quote(id)
		}
		b.WriteString(key)
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return p.fail("want ':'")
		}
		p.i++
		b.WriteByte(':')
		if err := p.value(b, depth+1); err != nil {
			return err
		}
		p.space()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != '}' {
			return p.fail("want ',' or '}'")
		}
	}
}

func (p *literal) array(b *bytes.Buffer, depth int) error {
	p.i++ // [
	b.WriteByte('[')
	first := true
	for {
		p.space()
		if p.i >= len(p.s) {
			return p.fail("unexpected end in an array")
		}
		if p.s[p.i] == ']' {
			p.i++
			b.WriteByte(']')
			return nil
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		if err := p.value(b, depth+1); err != nil {
			return err
		}
		p.space()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ']' {
			return p.fail("want ',' or ']'")
		}
	}
}
