package proctime

import (
	"time"

	"golang.org/x/sys/windows"
)

func cpu() time.Duration {
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
