package keystore

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/neullabs/ringlet/credentials"
)

// The test binary doubles as the helper process of the multi-process file
// tests: with helperEnv set, TestMain runs the helper instead of the tests.
const (
	helperEnv      = "RINGLET_TEST_HELPER" // writer or setter
	helperDirEnv   = "RINGLET_TEST_DIR"    // the Store's Dir
	helperStartEnv = "RINGLET_TEST_START"  // writer: first step
	helperTagEnv   = "RINGLET_TEST_TAG"    // setter: alias prefix
)

// setterCount is how many aliases each setter helper stores.
const setterCount = 30

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelper(h))
	}
	stop := startKeyringHarness()
	code := m.Run()
	stop()
	os.Exit(code)
}

func runHelper(name string) int {
	s, err := Open(Options{Dir: os.Getenv(helperDirEnv), Backend: credentials.BackendFile})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	switch name {
	case "writer":
		return runWriter(s)
	case "setter":
		return runSetter(s)
	}
	fmt.Fprintf(os.Stderr, "unknown helper %q\n", name)
	return 2
}

// runWriter stores writerStep(i) for i = start, start+1, ... until it is
// killed, printing i after each Set returns. When the parent goes away the
// next print hits a closed pipe and SIGPIPE ends the process.
func runWriter(s *Store) int {
	start, err := strconv.Atoi(os.Getenv(helperStartEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad", helperStartEnv, err)
		return 2
	}
	for i := start; ; i++ {
		r, key := writerStep(i)
		if _, err := s.Set(r, credentials.NewSecret(key)); err != nil {
			fmt.Fprintf(os.Stderr, "step %d: %v\n", i, err)
			return 1
		}
		fmt.Println(i)
	}
}

// runSetter waits for its stdin to close (the start signal, so that both
// setters run at the same time) and stores setterCount keys.
func runSetter(s *Store) int {
	tag := os.Getenv(helperTagEnv)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
	}
	for i := range setterCount {
		r, key := setterKey(tag, i)
		if _, err := s.Set(r, credentials.NewSecret(key)); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", r, err)
			return 1
		}
	}
	return 0
}

// writerAliases is how many aliases the writer cycles through.
const writerAliases = 8

// writerStep is what the writer stores at step i: alias a<i mod 8> gets a
// key that names i, so any file content tells which step wrote it last.
func writerStep(i int) (credentials.Ref, string) {
	return credentials.Ref{Provider: "anthropic", Alias: fmt.Sprintf("a%d", i%writerAliases)}, fmt.Sprintf("sk-step-%06d", i)
}

func setterKey(tag string, i int) (credentials.Ref, string) {
	return credentials.Ref{Provider: "anthropic", Alias: fmt.Sprintf("%s-%02d", tag, i)}, fmt.Sprintf("sk-%s-%02d-value", tag, i)
}
