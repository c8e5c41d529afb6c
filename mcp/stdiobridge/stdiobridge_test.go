package stdiobridge

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestReadLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100)
	r := bufio.NewReaderSize(strings.NewReader("short\n"+long+"\nafter\nlast"), 16)
	for _, want := range []struct {
		line string
		err  error
	}{{"short", nil}, {"", errLineTooLong}, {"after", nil}, {"last", nil}} {
		line, err := readLine(r, 50)
		if string(line) != want.line || (want.err != nil && !errors.Is(err, want.err)) {
			t.Errorf("got %q %v, want %q %v", line, err, want.line, want.err)
		}
	}
}
