package privatefile

import "syscall"

const sysFstatat = syscall.SYS_NEWFSTATAT
