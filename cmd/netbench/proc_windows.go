package main

import (
	"time"

	"golang.org/x/sys/windows"
)

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var creation, exit, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(windows.CurrentProcess(), &creation, &exit, &kernel, &user); err != nil {
		return 0
	}
	return time.Duration(filetime(kernel) + filetime(user))
}

// filetime is a Filetime duration (in 100 ns units) in nanoseconds.
func filetime(f windows.Filetime) int64 {
	return (int64(f.HighDateTime)<<32 | int64(f.LowDateTime)) * 100
}

// openFileLimit is the process's open-file limit: 0, unknown, as Windows
// has no such per-process limit on sockets.
func openFileLimit() int { return 0 }
