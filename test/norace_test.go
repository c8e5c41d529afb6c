//go:build !race

package test

// raceEnabled reports whether the tests run with -race; the binary under
// test is then built with -race as well.
const raceEnabled = false
