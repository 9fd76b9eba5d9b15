// Package proctime reads the CPU time the process has used, for the
// benchmarks that report CPU per operation beside wall time.
package proctime

import "time"

// CPU is the process's user plus system CPU time so far, or 0 where the
// system does not say.
func CPU() time.Duration { return cpu() }
