package netconn

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// Deadlines are made lazily: a conn's pair of deadlines is one allocation,
// and a conn that never sets a deadline nor waits on one makes no channel,
// through its checks, a cleared deadline and Close.
func TestDeadlinesLazy(t *testing.T) {
	if testing.AllocsPerRun(100, func() {
		rd, wd := newDeadlines()
		if rd.check() != nil || wd.check() != nil {
			t.Fatal("fresh deadline not clear")
		}
		rd.set(time.Time{})
		rd.close()
		wd.close()
	}) != 1 {
		t.Fatal("a conn's deadlines allocate more than once without a deadline or a wait")
	}
	rd, _ := newDeadlines()
	rd.close()
	select {
	case <-rd.Done(): // made closed: nobody waits for nothing after Close
	default:
		t.Fatal("Done after close is not closed")
	}
	if err := rd.check(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("check after close: %v", err)
	}
	d, _ := newDeadlines()
	done := d.Done() // a caller waits first, then the deadline is set: it wakes
	d.set(time.Now().Add(time.Millisecond))
	<-done
	if err := d.check(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("check after the deadline: %v", err)
	}
	d.set(time.Time{})
	if err := d.check(); err != nil {
		t.Fatalf("check after clearing: %v", err)
	}
}
