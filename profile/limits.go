package profile

import (
	"fmt"
	"strconv"
	"strings"
)

// Bounds of a profile's sandbox limits. Zero means Ringlet's default
// (see package sandbox); anything set must be within these, so that a
// typo cannot leave an agent unable to start (too low) or unbounded.
const (
	MinProcs  = 32
	MaxProcs  = 1 << 22
	MinMemory = 64 << 20
	MinTmp    = 1 << 20
	MaxSize   = 1 << 50 // 1 PiB: more is a typo
)

// CheckLimits checks a profile's max_procs, max_memory and tmp_size.
func CheckLimits(procs int, memory, tmp int64) error {
	if procs != 0 && (procs < MinProcs || procs > MaxProcs) {
		return fmt.Errorf("invalid max-procs %d: want %d to %d (0 for the default)", procs, MinProcs, MaxProcs)
	}
	if memory != 0 && (memory < MinMemory || memory > MaxSize) {
		return fmt.Errorf("invalid max-memory %s: want %s to %s (0 for the default)", FormatSize(memory), FormatSize(MinMemory), FormatSize(MaxSize))
	}
	if tmp != 0 && (tmp < MinTmp || tmp > MaxSize) {
		return fmt.Errorf("invalid tmp-size %s: want %s to %s (0 for the default)", FormatSize(tmp), FormatSize(MinTmp), FormatSize(MaxSize))
	}
	return nil
}

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}}

// ParseSize reads a size in bytes: a whole number with an optional
// binary unit, K, M, G or T (also written KiB, KB, ...): 512M, 4G, 0.
func ParseSize(s string) (int64, error) {
	in := s
	s = strings.TrimSpace(strings.ToUpper(s))
	s = strings.TrimSuffix(strings.TrimSuffix(s, "B"), "I")
	shift := uint(0)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, shift = rest, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > MaxSize>>shift {
		return 0, fmt.Errorf("invalid size %q: want a whole number with K, M, G or T (e.g. 512M, 4G)", in)
	}
	return n << shift, nil
}

// FormatSize writes bytes in the largest unit that divides them: 4G,
// 1536M, 100.
func FormatSize(n int64) string {
	for _, u := range sizeUnits {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
