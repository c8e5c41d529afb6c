package cli

import (
	"bytes"
	"io"
	"os"
	"testing"
)

func TestVerifyProgressLine(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	p := &progressLine{w: &b}
	p.show(0, 50_000)
	if b.Len() != 0 {
		t.Fatalf("a short walk: got %q, want no progress line", b.String())
	}
	p.show(0, 200_000)
	p.show(100_000, 200_000)
	p.clear()
	want := "\rverifying the audit log: 0 of 200000 records (0%)\rverifying the audit log: 100000 of 200000 records (50%)\r\033[K"
	if got := b.String(); got != want {
		t.Errorf("progress: got %q, want %q", got, want)
	}
}

// Progress goes to a terminal only: never into a file or a pipe that a
// script reads.
func TestVerifyProgressOnlyOnATerminal(t *testing.T) {
	t.Parallel()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range []any{&bytes.Buffer{}, f} {
		a := &app{}
		a.stdio.Err = w.(io.Writer)
		if p := a.verifyProgress(); p != nil {
			t.Errorf("stderr %T: got a progress line, want none", w)
		}
	}
	var none *progressLine
	none.clear() // a nil line is cleared without a write
}
