package toolchain

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
)

// shebangMax is what Linux reads of a script for its #! line
// (BINPRM_BUF_SIZE).
const shebangMax = 256

// readShebang returns the #! line of p without "#!", or "" when p is not
// a script.
func readShebang(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, shebangMax)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	buf = buf[:n]
	if !bytes.HasPrefix(buf, []byte("#!")) {
		return "", nil
	}
	line := buf[2:]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	return string(line), nil
}

// ParseShebang splits a #! line (without "#!") as Linux does: blanks
// (spaces and tabs) around it are dropped, the interpreter ends at the
// first blank, and the rest is one argument. ok is false for a line with
// no interpreter.
func ParseShebang(line string) (interp, arg string, ok bool) {
	line = strings.Trim(line, " \t")
	if line == "" || strings.ContainsAny(line, "\x00\n") {
		return "", "", false
	}
	i := strings.IndexAny(line, " \t")
	if i < 0 {
		return line, "", true
	}
	return line[:i], strings.TrimLeft(line[i:], " \t"), true
}

// EnvProgram is the program `/usr/bin/env ARG` runs, ARG being the one
// argument the kernel passes from a #! line: ARG itself, or with -S
// (--split-string) the first word of ARG that is not an option or an
// assignment. "" when it names none, or uses options this does not
// follow.
func EnvProgram(arg string) string {
	switch {
	case strings.HasPrefix(arg, "-S"):
		arg = arg[2:]
	case strings.HasPrefix(arg, "--split-string="):
		arg = strings.TrimPrefix(arg, "--split-string=")
	case strings.HasPrefix(arg, "--split-string "):
		arg = strings.TrimPrefix(arg, "--split-string ")
	case strings.HasPrefix(arg, "-"), strings.Contains(arg, "="):
		return ""
	default:
		if strings.ContainsAny(arg, " \t") {
			// env gets "node --flag" as one name, which it cannot find.
			return ""
		}
		return arg
	}
	words := strings.Fields(arg)
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "--":
			if i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
				return words[i+1]
			}
			return ""
		case w == "-u" || w == "-C" || w == "--unset" || w == "--chdir":
			i++ // takes a value
		case strings.HasPrefix(w, "-"):
			if w != "-i" && w != "--ignore-environment" && w != "-" && !strings.HasPrefix(w, "--unset=") && !strings.HasPrefix(w, "-u") {
				return ""
			}
		case strings.Contains(w, "="):
		default:
			return w
		}
	}
	return ""
}
