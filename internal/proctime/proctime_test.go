package proctime_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/netcore-go/netcore/internal/proctime"
)

// TestCPUAdvances spins for a while and expects the process's CPU time to
// have grown (on the systems that report it).
func TestCPUAdvances(t *testing.T) {
	if runtime.GOOS == "js" || runtime.GOOS == "wasip1" || runtime.GOOS == "plan9" {
		t.Skip("no CPU time on " + runtime.GOOS)
	}
	before := proctime.CPU()
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	if after := proctime.CPU(); after <= before {
		t.Fatalf("CPU time %v then %v after 50 ms of spinning", before, after)
	}
}
