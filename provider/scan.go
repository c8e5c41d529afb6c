package provider

import (
	"encoding/json"
)

// answerUsage reads the usage of a whole JSON answer without decoding all
// of it: a walk over the top-level object checks the whole body's syntax
// as encoding/json does and skips every member but "object", "model" and
// "usage", which alone are decoded (into a wireBody, in the order they
// come, as json.Unmarshal would). ok is false where json.Unmarshal of the
// body into a wireBody would fail. A body that is not an object, or whose
// member names carry escapes or non-ASCII bytes (which encoding/json
// folds in ways a byte compare does not), is decoded whole instead: the
// answer is the same either way, only slower.
func answerUsage(body []byte) (u Usage, ok bool) {
	var b wireBody
	i := skipSpace(body, 0)
	if i == len(body) || body[i] != '{' {
		return wholeUsage(body)
	}
	i = skipSpace(body, i+1)
	// The members to decode, in order: field, start and end of the value.
	var buf [4][3]int
	members := buf[:0]
	if i < len(body) && body[i] == '}' {
		i++
	} else {
		for {
			if i >= len(body) || body[i] != '"' {
				return Usage{}, false
			}
			end, plain := scanString(body, i)
			if end < 0 {
				return Usage{}, false
			}
			if !plain {
				return wholeUsage(body)
			}
			field := answerField(body[i+1 : end-1])
			i = skipSpace(body, end)
			if i >= len(body) || body[i] != ':' {
				return Usage{}, false
			}
			i = skipSpace(body, i+1)
			vend := skipValue(body, i, maxDepth-1) // the answer is one level
			if vend < 0 {
				return Usage{}, false
			}
			if field >= 0 {
				members = append(members, [3]int{field, i, vend})
			}
			i = skipSpace(body, vend)
			if i >= len(body) {
				return Usage{}, false
			}
			if body[i] == '}' {
				i++
				break
			}
			if body[i] != ',' {
				return Usage{}, false
			}
			i = skipSpace(body, i+1)
		}
	}
	if skipSpace(body, i) != len(body) {
		return Usage{}, false
	}
	for _, m := range members {
		v := body[m[1]:m[2]]
		var err error
		switch m[0] {
		case fieldObject:
			err = decodeString(v, &b.Object)
		case fieldModel:
			err = decodeString(v, &b.Model)
		case fieldUsage:
			if !decodeFlatUsage(v, &b.Usage) {
				err = json.Unmarshal(v, &b.Usage)
			}
		}
		if err != nil {
			return Usage{}, false
		}
	}
	return b.usage(), true
}

// decodeString is json.Unmarshal of v (a valid JSON value) into dst,
// without it for a string of printable ASCII without escapes.
func decodeString(v []byte, dst *string) error {
	if len(v) >= 2 && v[0] == '"' {
		if end, plain := scanString(v, 0); plain && end == len(v) {
			*dst = string(v[1 : len(v)-1])
			return nil
		}
	}
	return json.Unmarshal(v, dst)
}

// decodeFlatUsage decodes v (a valid JSON value) into *dst as
// json.Unmarshal would, for the common case of null or an object whose
// members have plain names and whose usage counts are small non-negative
// integers; it reports false, having changed nothing, for anything else.
func decodeFlatUsage(v []byte, dst **wireUsage) bool {
	if string(v) == "null" {
		*dst = nil
		return true
	}
	if v[0] != '{' {
		return false
	}
	var u wireUsage
	if *dst != nil {
		u = **dst
	}
	i := skipSpace(v, 1)
	if v[i] == '}' {
		return finishFlat(dst, u)
	}
	for {
		end, plain := scanString(v, i)
		if !plain {
			return false
		}
		name := v[i+1 : end-1]
		i = skipSpace(v, skipSpace(v, end)+1) // past the ':'
		vend := skipValue(v, i, maxDepth)
		if f := usageCount(&u, name); f != nil {
			n, ok := smallInt(v[i:vend])
			if !ok {
				return false
			}
			*f = n
		} else if foldEq(name, "input_tokens_details") || foldEq(name, "prompt_tokens_details") {
			return false
		}
		i = skipSpace(v, vend)
		if v[i] == '}' {
			return finishFlat(dst, u)
		}
		i = skipSpace(v, i+1) // past the ','
	}
}

func finishFlat(dst **wireUsage, u wireUsage) bool {
	if *dst == nil {
		*dst = new(wireUsage)
	}
	**dst = u
	return true
}

// usageCount is the count of u that name is, nil for none.
func usageCount(u *wireUsage, name []byte) *int64 {
	switch {
	case foldEq(name, "input_tokens"):
		return &u.InputTokens
	case foldEq(name, "output_tokens"):
		return &u.OutputTokens
	case foldEq(name, "cache_read_input_tokens"):
		return &u.CacheReadInputTokens
	case foldEq(name, "cache_creation_input_tokens"):
		return &u.CacheCreationInputTokens
	case foldEq(name, "prompt_tokens"):
		return &u.PromptTokens
	case foldEq(name, "completion_tokens"):
		return &u.CompletionTokens
	}
	return nil
}

// smallInt is v as a JSON number of at most 18 digits with no sign,
// fraction or exponent.
func smallInt(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// foldEq reports whether name is want (lower case ASCII) but for the case
// of its ASCII letters, as encoding/json matches member names.
func foldEq(name []byte, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i := range name {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// wholeUsage is answerUsage by decoding the whole body.
func wholeUsage(body []byte) (Usage, bool) {
	var b wireBody
	if json.Unmarshal(body, &b) != nil {
		return Usage{}, false
	}
	return b.usage(), true
}

// The members of an answer that usage is read from.
const (
	fieldObject = iota
	fieldModel
	fieldUsage
)

// answerField is which of wireBody's members name is, -1 for none; names
// match case-insensitively, as encoding/json matches them (ASCII only:
// answerUsage hands other names to encoding/json).
func answerField(name []byte) int {
	switch {
	case foldEq(name, "usage"):
		return fieldUsage
	case foldEq(name, "model"):
		return fieldModel
	case foldEq(name, "object"):
		return fieldObject
	}
	return -1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString returns the index after the JSON string starting at b[i]
// (a '"'), or -1 if it is not a valid one; plain reports that it holds
// only printable ASCII without escapes.
func scanString(b []byte, i int) (end int, plain bool) {
	plain = true
	for i++; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, plain
		case c == '\\':
			plain = false
			i++
			if i >= len(b) {
				return -1, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return -1, false
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return -1, false
					}
				}
				i += 4
			default:
				return -1, false
			}
		case c < 0x20:
			return -1, false
		case c >= 0x80:
			// Any byte passes, as in encoding/json (invalid UTF-8
			// becomes U+FFFD when decoded).
			plain = false
		}
	}
	return -1, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// maxDepth is encoding/json's bound on nesting.
const maxDepth = 10000

// skipValue returns the index after the JSON value starting at b[i], or
// -1 if there is none there, it is not valid JSON, or it nests deeper
// than limit.
func skipValue(b []byte, i, limit int) int {
	var buf [64]byte
	open := buf[:0] // '{' or '[' of each container the value is in
	for {
		// i is where a value starts.
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; c {
		case '{', '[':
			if len(open) >= limit {
				return -1
			}
			open = append(open, c)
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' or ']'
				open = open[:len(open)-1]
				i++
				break
			}
			if c == '{' {
				if i = objectKey(b, i); i < 0 {
					return -1
				}
			}
			continue
		case '"':
			if i, _ = scanString(b, i); i < 0 {
				return -1
			}
		case 't':
			if i = literal(b, i, "true"); i < 0 {
				return -1
			}
		case 'f':
			if i = literal(b, i, "false"); i < 0 {
				return -1
			}
		case 'n':
			if i = literal(b, i, "null"); i < 0 {
				return -1
			}
		default:
			if i = skipNumber(b, i); i < 0 {
				return -1
			}
		}
		// A value ended at i: close what it ends, up to the next value.
		for {
			if len(open) == 0 {
				return i
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return -1
			}
			in := open[len(open)-1]
			if b[i] == in+2 {
				open = open[:len(open)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return -1
			}
			i = skipSpace(b, i+1)
			if in == '{' {
				if i = objectKey(b, i); i < 0 {
					return -1
				}
			}
			break
		}
	}
}

// objectKey skips a member's name and colon at b[i] and returns where its
// value starts, or -1.
func objectKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i, _ = scanString(b, i); i < 0 {
		return -1
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipSpace(b, i+1)
}

// literal returns the index after word at b[i], or -1.
func literal(b []byte, i int, word string) int {
	if len(b)-i < len(word) || string(b[i:i+len(word)]) != word {
		return -1
	}
	return i + len(word)
}

// skipNumber returns the index after the JSON number at b[i], or -1:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() bool {
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > start
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return -1
		}
	}
	return i
}
