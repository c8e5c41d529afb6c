package cli

import "github.com/neullabs/ringlet/sandbox"

// userTasks counts the tasks (threads) whose real uid is uid, which is
// what RLIMIT_NPROC counts on Linux.
func userTasks(uid int) (int, error) { return sandbox.UserTasks(uid) }
