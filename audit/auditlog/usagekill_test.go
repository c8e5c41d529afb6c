package auditlog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/neullabs/ringlet/audit"
)

// usageKillEnv names the log a child process writes until it is killed
// (TestUsageKilledWriterChild).
const usageKillEnv = "RINGLET_TEST_USAGE_KILL_LOG"

// TestUsageKilledWriterChild is the child of TestUsageSummaryAfterKill:
// eight writers append provider requests and other records to the log
// until the process is killed. It does nothing in an ordinary run.
func TestUsageKilledWriterChild(t *testing.T) {
	path := os.Getenv(usageKillEnv)
	if path == "" {
		t.Skip("run by TestUsageSummaryAfterKill")
	}
	l, err := Open(Options{Path: path, OnCommit: func([]audit.Record) {}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	l.usageLag = 13 // the summary moves often, and trails at every kill
	seed, _ := strconv.ParseUint(os.Getenv(usageKillEnv+"_SEED"), 10, 64)
	for w := range 8 {
		go func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := 0; ; i++ {
				if _, err := l.Append(context.Background(), usageRecord(rng, i)); err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(4)
				}
			}
		}()
	}
	select {} // until killed
}

// TestUsageSummaryAfterKill kills (SIGKILL) a process that writes the log
// from eight goroutines, at a different point each round, while the sums
// of the records since the summary last moved wait in its memory: the
// reports of the log it left, before and after the next Open catches the
// summary up, equal a scan of every record, and the chain is intact.
func TestUsageSummaryAfterKill(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := dbPath(t)
	openLog(t, Options{Path: path}).Close() // made, anchored, empty
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := range 5 {
		before := recordCount(t, path)
		cmd := exec.Command(os.Args[0], "-test.run=^TestUsageKilledWriterChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), usageKillEnv+"="+path, fmt.Sprintf("%s_SEED=%d", usageKillEnv, seed+uint64(round)))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		want := before + 30 + rng.Int64N(400)
		deadline := time.Now().Add(time.Minute)
		for recordCount(t, path) < want {
			select {
			case err := <-exited:
				t.Fatalf("round %d: the writer exited before it was killed: %v", round, err)
			default:
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("round %d: fewer than %d records after a minute", round, want)
			}
			time.Sleep(time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := <-exited; err == nil {
			t.Fatalf("round %d: the writer exited cleanly, want killed", round)
		}
		n := recordCount(t, path)
		through := usageThroughSeq(t, path)
		t.Logf("round %d: killed at %d records, the summary through %d", round, n, through)
		// As the killed writer left it: the reports read the records
		// after through_seq.
		checkUsage(t, path)
		l := openLog(t, Options{Path: path})
		if got := usageThroughSeq(t, path); got != n {
			t.Errorf("round %d: through_seq %d after Open, want %d (the tip)", round, got, n)
		}
		checkUsage(t, path)
		l.Close()
		mustVerifyOK(t, path, n)
	}
}

// recordCount counts the records as a reader does (audit.OpenReader),
// whose shared-memory file is private as the writer requires.
func recordCount(t *testing.T, path string) int64 {
	t.Helper()
	db, err := audit.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return queryInt(t, db, `SELECT count(*) FROM records`)
}
