package core

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
)

// testRun starts a test on r (a share of lost in sent) at now, with
// sequence numbers counting segments from 1000, and sends n segments
// through it, lost the segments for which lose is true; it returns the
// end of the test's segments.
func testRun(t *testing.T, r *repairState, now time.Time, sent, lost, n int, lose func(i int) bool) seqnum.Value {
	t.Helper()
	r.sent, r.repairs = sent, lost
	if r.congested(now, 1000, 1000, true, 1000) || !r.test.on {
		t.Fatalf("no test started at a share of %d in %d (test %+v)", lost, sent, r.test)
	}
	for i := range n {
		seq := seqnum.Value(1000 + i)
		r.test.noteSent(seq, seq+1)
		if lose(i) {
			r.test.noteLost(seq)
		}
	}
	return seqnum.Value(1000 + n)
}

// TestLossVerdict checks the congestion decision: a test at a share of
// 10% counts 400 segments; 40 of them lost (the share holds) is random
// loss, hidden, with no test again for a second; 5 lost (the share fell
// below half) is congestion, passed for repairCongestedFor; no test before
// the pipe is full or below the share; a slow test too short to expect
// repairTestMinLost losses gives no verdict.
func TestLossVerdict(t *testing.T) {
	now := time.Now()
	t.Run("random", func(t *testing.T) {
		var r repairState
		end := testRun(t, &r, now, 1000, 100, 400, func(i int) bool { return i%10 == 0 })
		if r.test.segs != 400 || !r.test.endSet {
			t.Fatalf("test counts %d segments (end set %v); want 400", r.test.segs, r.test.endSet)
		}
		if r.congested(now, end-1, end, true, 1000) || !r.test.on {
			t.Fatal("verdict before the test's last segment was acknowledged")
		}
		if r.congested(now, end, end, true, 1000) || r.test.on || r.congestions != 0 {
			t.Fatalf("40 of 400 lost at a 10%% share: congestion %d, test on %v; want random", r.congestions, r.test.on)
		}
		r.sent, r.repairs = 1000, 100
		if r.congested(now.Add(repairTestEvery/2), end, end, true, 1000) || r.test.on {
			t.Fatal("a test again within repairTestEvery of a random verdict")
		}
		if r.congested(now.Add(repairTestEvery+time.Millisecond), end, end, true, 1000) || !r.test.on {
			t.Fatal("no test again after repairTestEvery")
		}
	})
	t.Run("congestion", func(t *testing.T) {
		var r repairState
		end := testRun(t, &r, now, 1000, 100, 400, func(i int) bool { return i%80 == 0 })
		if !r.congested(now, end, end, true, 1000) || r.congestions != 1 {
			t.Fatalf("5 of 400 lost at a 10%% share: congestions %d; want congestion", r.congestions)
		}
		if !r.congested(now.Add(repairCongestedFor/2), end, end, true, 1000) {
			t.Fatal("the verdict of congestion did not stand")
		}
		if r.congested(now.Add(repairCongestedFor+time.Millisecond), end, end, true, 1000) {
			t.Fatal("the verdict of congestion stood past repairCongestedFor")
		}
	})
	t.Run("no test", func(t *testing.T) {
		var r repairState
		r.sent, r.repairs = 1000, 100
		if r.congested(now, 1000, 1000, false, 1000) || r.test.on {
			t.Fatal("a test before the pipe is full")
		}
		r.sent, r.repairs = 1000, 30
		if r.congested(now, 1000, 1000, true, 1000) || r.test.on {
			t.Fatal("a test at a share of 3%")
		}
	})
	t.Run("slow", func(t *testing.T) {
		var r repairState
		end := testRun(t, &r, now, 1000, 100, 50, func(int) bool { return false })
		later := now.Add(repairTestMaxTime + time.Millisecond)
		if r.congested(later, end, end, true, 1000) || r.test.on || r.congestions != 0 {
			t.Fatalf("a test of 50 segments (5 losses expected) cut short: congestions %d, test on %v; want no verdict", r.congestions, r.test.on)
		}
	})
}
