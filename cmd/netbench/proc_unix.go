//go:build unix

package main

import "syscall"

// openFileLimit is the process's open-file limit (0 if unknown).
func openFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return int(rl.Cur)
}
