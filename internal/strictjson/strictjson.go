// Package strictjson refuses JSON that two readers could take for two
// different values. JSON leaves duplicate member names undefined: one
// reader keeps the first, another the last, and encoding/json (which
// matches struct fields ignoring case) may take "Text" for "text". A hook
// and a tool reading the same bytes must read the same thing, so an
// object that names a member twice, or twice but for case, or with a
// name that is not valid Unicode (an unpaired surrogate escape decodes to
// U+FFFD here and to something else elsewhere), is refused.
package strictjson

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error says what is wrong and where.
type Error struct {
	// Path is the object the problem is in: "" for the top level, else
	// its members and array indexes, such as params.arguments.items[2].
	Path string
	msg  string
}

func (e *Error) Error() string { return e.msg }

// Checker checks JSON values; the zero Checker checks every object.
type Checker struct {
	// Exact lists, for objects at a path (as in Error.Path), member names
	// that must be written exactly so: a member whose name equals one of
	// them but for case is refused even if it appears once, since
	// encoding/json would take it for that member.
	Exact map[string][]string
	// Levels, when positive, checks only the objects that many levels
	// deep or less (1: the top-level object only).
	Levels int
}

// maxNesting bounds recursion, as encoding/json does.
const maxNesting = 10000

// Check is Checker{}.Check.
func Check(data []byte) error { return Checker{}.Check(data) }

// Check reports the first problem in data, which should be valid JSON
// (json.Valid): Check does not validate it, though it never panics and
// reports what it cannot parse.
func (c Checker) Check(data []byte) error {
	s := &scanner{data: data, c: c}
	// The first levels' lists start in the scanner's own arrays: a
	// message of a few small objects (a JSON-RPC call, on the path of
	// every request) is checked without growing them.
	s.path = s.pathBuf[:0]
	s.seen = s.seenBuf[:0]
	for p := range c.Exact {
		if p == "" {
			continue
		}
		s.exactDepth = max(s.exactDepth, strings.Count(p, ".")+strings.Count(p, "[")+1)
	}
	if err := s.value(0); err != nil {
		return err
	}
	s.space()
	if s.i != len(s.data) {
		return s.invalid()
	}
	return nil
}

type scanner struct {
	data []byte
	i    int
	c    Checker
	// exactDepth is the deepest path Exact names: objects deeper need no
	// look-up.
	exactDepth int
	path       []segment
	seen       [][][]byte // member names per nesting level, reused

	pathBuf  [8]segment
	seenBuf  [4][][]byte
	namesBuf [4][8][]byte
}

// segment is one step of a path: a member name, or an array index.
type segment struct {
	name  []byte
	index int // -1 for a member
}

// manyMembers is where an object's names go into a map rather than a
// list searched in turn.
const manyMembers = 32

func (s *scanner) invalid() error {
	return &Error{Path: s.where(), msg: "not valid JSON"}
}

func (s *scanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) value(level int) error {
	if level > maxNesting {
		return &Error{Path: s.where(), msg: fmt.Sprintf("nested deeper than %d levels", maxNesting)}
	}
	s.space()
	if s.i >= len(s.data) {
		return s.invalid()
	}
	switch s.data[s.i] {
	case '{':
		return s.object(level)
	case '[':
		return s.array(level)
	case '"':
		_, _, err := s.str(false)
		return err
	default:
		start := s.i
		for s.i < len(s.data) && !strings.ContainsRune(",:[]{}\" \t\r\n", rune(s.data[s.i])) {
			s.i++
		}
		if s.i == start {
			return s.invalid()
		}
		return nil
	}
}

func (s *scanner) array(level int) error {
	s.i++ // [
	s.space()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		return nil
	}
	for n := 0; ; n++ {
		s.path = append(s.path, segment{index: n})
		err := s.value(level + 1)
		s.path = s.path[:len(s.path)-1]
		if err != nil {
			return err
		}
		s.space()
		if s.i >= len(s.data) {
			return s.invalid()
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.invalid()
		}
	}
}

func (s *scanner) object(level int) error {
	s.i++ // {
	check := s.c.Levels <= 0 || level < s.c.Levels
	var exact []string
	if check && len(s.c.Exact) > 0 && len(s.path) <= s.exactDepth {
		exact = s.c.Exact[s.where()]
	}
	for len(s.seen) <= level {
		var names [][]byte
		if n := len(s.seen); n < len(s.namesBuf) {
			names = s.namesBuf[n][:0]
		}
		s.seen = append(s.seen, names)
	}
	seen := s.seen[level][:0]
	var many map[string][]byte // folded name -> name, once the object is large
	defer func() { s.seen[level] = seen[:0] }()
	s.space()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.space()
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			return s.invalid()
		}
		name, ok, err := s.str(check)
		if err != nil {
			return err
		}
		if check {
			if !ok {
				return &Error{Path: s.where(), msg: fmt.Sprintf("a key in %s is not valid Unicode (invalid UTF-8, or an unpaired UTF-16 surrogate escape); send keys as valid Unicode", s.describe())}
			}
			for _, want := range exact {
				// bytes.EqualFold folds as encoding/json matches names.
				if string(name) != want && bytes.EqualFold(name, []byte(want)) {
					return &Error{Path: s.where(), msg: fmt.Sprintf("the key %s in %s must be written %s (these names are case-sensitive)", quote(string(name)), s.describe(), quote(want))}
				}
			}
			var prev []byte
			if many != nil {
				prev = many[foldName(string(name))]
			} else {
				for _, m := range seen {
					if bytes.EqualFold(m, name) {
						prev = m
						break
					}
				}
			}
			switch {
			case prev != nil && bytes.Equal(prev, name):
				return &Error{Path: s.where(), msg: fmt.Sprintf("the key %s appears twice in %s; send each key once", quote(string(name)), s.describe())}
			case prev != nil:
				return &Error{Path: s.where(), msg: fmt.Sprintf("the keys %s and %s in %s differ only in case, and some readers take them for one key; send only one", quote(string(prev)), quote(string(name)), s.describe())}
			}
			if many != nil {
				many[foldName(string(name))] = name
			} else if seen = append(seen, name); len(seen) > manyMembers {
				many = make(map[string][]byte, 2*manyMembers)
				for _, m := range seen {
					many[foldName(string(m))] = m
				}
			}
		}
		s.space()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return s.invalid()
		}
		s.i++
		s.path = append(s.path, segment{name: name, index: -1})
		err = s.value(level + 1)
		s.path = s.path[:len(s.path)-1]
		if err != nil {
			return err
		}
		s.space()
		if s.i >= len(s.data) {
			return s.invalid()
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.invalid()
		}
	}
}

// str reads the string at s.i. With decode, it returns the string's value
// (for a string without escapes, a slice of the input) and whether that
// is valid Unicode (no invalid UTF-8, no unpaired surrogate escape);
// without, it only skips it.
func (s *scanner) str(decode bool) ([]byte, bool, error) {
	s.i++ // "
	start := s.i
	for s.i < len(s.data) {
		switch c := s.data[s.i]; {
		case c == '"':
			raw := s.data[start:s.i:s.i]
			s.i++
			if !decode {
				return nil, true, nil
			}
			return raw, utf8.Valid(raw), nil
		case c == '\\':
			if !decode {
				s.i += 2
				continue
			}
			s.i = start
			return s.unescape()
		default:
			s.i++
		}
	}
	return nil, false, s.invalid()
}

// unescape decodes the string starting at s.i (after its quote) that has
// escapes.
func (s *scanner) unescape() ([]byte, bool, error) {
	b := []byte{}
	valid := true
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '"':
			s.i++
			return b, valid && utf8.Valid(b), nil
		case c != '\\':
			b = append(b, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.data) {
			return nil, false, s.invalid()
		}
		e := s.data[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, false, s.invalid()
			}
			if utf16Surrogate(r) {
				// A high surrogate followed by a low one is one character;
				// anything else is unpaired.
				if r < 0xDC00 && s.i+1 < len(s.data) && s.data[s.i] == '\\' && s.data[s.i+1] == 'u' {
					save := s.i
					s.i += 2
					if lo, ok := s.hex4(); ok && lo >= 0xDC00 && lo <= 0xDFFF {
						b = utf8.AppendRune(b, 0x10000+(r-0xD800)<<10+(lo-0xDC00))
						continue
					}
					s.i = save
				}
				valid = false
				b = utf8.AppendRune(b, utf8.RuneError)
				continue
			}
			b = utf8.AppendRune(b, r)
		default:
			return nil, false, s.invalid()
		}
	}
	return nil, false, s.invalid()
}

func utf16Surrogate(r rune) bool { return r >= 0xD800 && r <= 0xDFFF }

func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.data) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(s.data[s.i:s.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	s.i += 4
	return rune(n), true
}

// where is the path of the current object, as in Error.Path.
func (s *scanner) where() string {
	var b strings.Builder
	for _, seg := range s.path {
		switch {
		case seg.index >= 0:
			b.WriteString("[" + strconv.Itoa(seg.index) + "]")
		case simpleName(seg.name):
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.Write(seg.name)
		default:
			b.WriteString("[" + quote(string(seg.name)) + "]")
		}
	}
	return b.String()
}

// describe names the current object for a message.
func (s *scanner) describe() string {
	if w := s.where(); w != "" {
		return w
	}
	return "the top-level object"
}

// quote quotes a name for a message, cut to 64 characters.
func quote(n string) string {
	if utf8.RuneCountInString(n) > 64 {
		n = string([]rune(n)[:64]) + "…"
	}
	return strconv.Quote(n)
}

func simpleName(n []byte) bool {
	if len(n) == 0 || len(n) > 64 {
		return false
	}
	for _, c := range n {
		if !(c == '_' || c == '$' || c == '-' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// foldName is encoding/json's: two names fold the same exactly when
// encoding/json would match one to a struct field named by the other.
func foldName(in string) string {
	var b strings.Builder
	b.Grow(len(in))
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			b.WriteByte(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(in[i:])
		b.WriteRune(foldRune(r))
		i += n
	}
	return b.String()
}

// foldRune is the smallest rune of r's case-folding orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
