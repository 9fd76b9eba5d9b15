package netconn_test

import (
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
)

// maxDynamicTimeout is the longest timeout growTimeout tries: a strict upper
// bound on what a step of a test may take even on a loaded machine (the
// value of Go's net/timeout_test.go).
const maxDynamicTimeout = 4 * time.Second

// nextTimeout returns the timeout to try after a set-up step took actual,
// longer than the timeout it had, as Go's net/timeout_test.go does; ok is
// false past maxDynamicTimeout.
func nextTimeout(actual time.Duration) (next time.Duration, ok bool) {
	if actual >= maxDynamicTimeout {
		return maxDynamicTimeout, false
	}
	return min(actual*5/4, maxDynamicTimeout), true
}

// growTimeout runs attempt with timeout first and, as long as attempt
// reports that its set-up took longer than its timeout (took, with ok
// false: what it checks was not tested), again with a longer one. The test
// fails when the set-up takes longer than maxDynamicTimeout. An attempt
// checks what it asserts in full every time it gets its set-up in time.
func growTimeout(t *testing.T, first time.Duration, attempt func(d time.Duration) (took time.Duration, ok bool)) {
	t.Helper()
	for d := first; ; {
		took, ok := attempt(d)
		if ok {
			return
		}
		next, more := nextTimeout(took)
		if !more {
			t.Fatalf("set-up took %v, longer than the longest timeout (%v)", took, maxDynamicTimeout)
		}
		t.Logf("set-up took %v of a %v timeout (a loaded machine); retrying with %v", took, d, next)
		d = next
	}
}

// waitParked waits until ns has n requests parked in its engine (a call is
// then blocked inside it, not on its way), and reports whether that
// happened before by.
func waitParked(t testing.TB, ns *core.Netstack, n int, by time.Time) bool {
	t.Helper()
	for time.Now().Before(by) {
		if parked(t, ns) == n {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

// parked returns how many requests wait inside ns's engine.
func parked(t testing.TB, ns *core.Netstack) int {
	t.Helper()
	resp, err := ns.CommandChannel().Request(testCtx(t), core.NoHandle, core.GetStats{})
	if err != nil {
		t.Fatal(err)
	}
	return resp.(core.Stats).Parked
}
