package profile

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "0", want: 0},
		{in: "100", want: 100},
		{in: "512M", want: 512 << 20},
		{in: "4G", want: 4 << 30},
		{in: "4g", want: 4 << 30},
		{in: "4GiB", want: 4 << 30},
		{in: "4GB", want: 4 << 30},
		{in: "1T", want: 1 << 40},
		{in: "64K", want: 64 << 10},
		{in: " 2G ", want: 2 << 30},
		{in: "", bad: true},
		{in: "G", bad: true},
		{in: "-1G", bad: true},
		{in: "1.5G", bad: true},
		{in: "4X", bad: true},
		{in: "4GG", bad: true},
		{in: "2048T", bad: true},
		{in: "99999999999999999999", bad: true},
	} {
		got, err := ParseSize(c.in)
		if c.bad {
			if err == nil || !strings.Contains(err.Error(), "e.g. 512M, 4G") {
				t.Errorf("ParseSize(%q): got %d, %v; want an error that shows the form", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q): got %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0", 100: "100", 4 << 30: "4G", 1536 << 20: "1536M", 1 << 40: "1T", 1025: "1025"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d): got %q, want %q", n, got, want)
		}
		if back, err := ParseSize(FormatSize(n)); err != nil || back != n {
			t.Errorf("ParseSize(FormatSize(%d)): got %d, %v", n, back, err)
		}
	}
}

func TestCheckLimits(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		procs       int
		memory, tmp int64
		want        string
	}{
		{0, 0, 0, ""},
		{512, 4 << 30, 1 << 30, ""},
		{MinProcs, MinMemory, MinTmp, ""},
		{1, 0, 0, "invalid max-procs 1: want 32 to"},
		{-5, 0, 0, "invalid max-procs -5"},
		{0, 1 << 20, 0, "invalid max-memory 1M: want 64M to 1024T"},
		{0, -1, 0, "invalid max-memory"},
		{0, 0, 1000, "invalid tmp-size 1000: want 1M to"},
		{0, 0, MaxSize + 1, "invalid tmp-size"},
	} {
		err := CheckLimits(c.procs, c.memory, c.tmp)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("CheckLimits(%d, %d, %d): got %v, want %q", c.procs, c.memory, c.tmp, err, c.want)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"4G", "512M", "0", "1.5G", "-1", "4GiB", "9999999999T"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 || n > MaxSize {
			t.Fatalf("ParseSize(%q) = %d, outside 0..MaxSize", s, n)
		}
		if back, err := ParseSize(FormatSize(n)); err != nil || back != n {
			t.Fatalf("round trip of %d: got %d, %v", n, back, err)
		}
	})
}
