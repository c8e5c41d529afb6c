package config

import "testing"

// FuzzParse checks that Parse never panics and that whatever it accepts
// survives Marshal and a second Parse unchanged. Seeds live in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte("[daemon]\nlisten = \"127.0.0.1:8765\"\n"))
	f.Add([]byte("daemon.log_level = 'warn'\n[audit]\npath = \"~/a.db\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Errorf("Parse: got %+v with error %v, want nil config", c, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate of a parsed config: got %v, want nil", err)
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal %+v: %v", *c, err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse of Marshal output %q: %v", out, err)
		}
		if *again != *c {
			t.Errorf("round trip: got %+v, want %+v (marshalled %q)", *again, *c, out)
		}
	})
}
