package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
)

const (
	rlimitData  = syscall.RLIMIT_DATA
	rlimitNproc = 6 // RLIMIT_NPROC
)

// hardLimit is this process's hard limit of resource res; tests replace
// it.
var hardLimit = func(res int) (uint64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(res, &r); err != nil {
		return 0, false
	}
	return r.Max, true
}

// UserTasks counts the tasks (threads) whose real uid is uid, which is
// what RLIMIT_NPROC counts on Linux. A process that exits while it is
// read is skipped. Tests replace it through userTasksFunc.
func UserTasks(uid int) (int, error) { return userTasksFunc(uid) }

var userTasksFunc = func(uid int) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	want := []byte(strconv.Itoa(uid))
	n, seen := 0, 0
	for _, de := range entries {
		if _, err := strconv.Atoi(de.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + de.Name() + "/status")
		if err != nil {
			continue
		}
		seen++
		var real []byte
		threads := 0
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			k, v, _ := bytes.Cut(sc.Bytes(), []byte(":"))
			f := bytes.Fields(v)
			switch {
			case string(k) == "Uid" && len(f) > 0:
				real = f[0]
			case string(k) == "Threads" && len(f) > 0:
				threads, _ = strconv.Atoi(string(f[0]))
			}
		}
		if bytes.Equal(real, want) {
			n += max(threads, 1)
		}
	}
	if seen == 0 {
		return 0, errors.New("/proc shows no process")
	}
	return n, nil
}
