//go:build race

package provider

// raceEnabled reports whether the tests run with -race, under which
// sync.Pool drops a share of what it is given.
const raceEnabled = true
