package benchnet

import (
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/neullabs/ringlet/privatefile"
)

// Settle waits until no file under the dirs changed within
// privatefile.RacyWindow. Ringlet reads a file changed that lately again
// at each use (its times may not show the next change: see
// privatefile.Stamp.SettledAt), which is what a daemon does for two
// seconds after an edit, not in its steady state; the benchmarks measure
// the steady state.
func Settle(tb testing.TB, dirs ...string) {
	tb.Helper()
	var latest time.Time
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if st, ok := privatefile.StampOf(path); ok && st.Changed().After(latest) {
				latest = st.Changed()
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if wait := time.Until(latest.Add(privatefile.RacyWindow + 10*time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}
}
