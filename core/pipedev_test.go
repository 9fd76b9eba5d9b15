package core_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/netcore-go/netcore/core"
)

// pipeDevCases are PipeDev settings checked against a stack with MTU 1500.
var pipeDevCases = []struct {
	name   string
	medium core.Medium
	mtu    int
	ok     bool
}{
	{"Match", core.MediumIP, 1500, true},
	{"MTUZeroIsTheStacks", core.MediumIP, 0, true},
	{"SmallerMTU", core.MediumIP, 1280, false},
	{"LargerMTU", core.MediumIP, 9000, false},
	{"UnknownMedium", core.Medium(7), 1500, false},
}

// TestAttachPipeDevMismatch checks that AttachDevice refuses a PipeDev whose
// Medium or MTU does not match the stack's, with an error matching
// ErrInvalid, and that the stack then still takes a matching device.
func TestAttachPipeDevMismatch(t *testing.T) {
	leakCheck(t)
	for _, tc := range pipeDevCases {
		t.Run(tc.name, func(t *testing.T) {
			ns, err := core.New(core.Config{MTU: 1500})
			if err != nil {
				t.Fatal(err)
			}
			defer ns.Close()
			p := core.NewPipe(0)
			defer p.B.Close()
			err = ns.AttachDevice(&core.PipeDev{End: p.A, Medium: tc.medium, MTU: tc.mtu})
			if tc.ok {
				if err != nil {
					t.Fatalf("AttachDevice: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("AttachDevice = %v, want an error matching ErrInvalid", err)
			}
			if err := ns.AttachDevice(&core.PipeDev{End: p.A, MTU: 1500}); err != nil {
				t.Fatalf("AttachDevice after a refused device: %v", err)
			}
		})
	}
}

// TestPollPipeDevMismatch checks that PollDeviceIO, which has no error to
// return, panics with an error matching ErrInvalid on a mismatched PipeDev
// before it moves any packet.
func TestPollPipeDevMismatch(t *testing.T) {
	leakCheck(t)
	for _, tc := range pipeDevCases {
		t.Run(tc.name, func(t *testing.T) {
			ns, err := core.New(core.Config{MTU: 1500})
			if err != nil {
				t.Fatal(err)
			}
			defer ns.Close()
			p := core.NewPipe(0)
			defer p.A.Close()
			if err := p.B.Send(make([]byte, 20)); err != nil {
				t.Fatal(err)
			}
			err = pollRecover(ns, &core.PipeDev{End: p.A, Medium: tc.medium, MTU: tc.mtu})
			switch {
			case tc.ok && err != nil:
				t.Fatalf("PollDeviceIO panicked: %v", err)
			case !tc.ok && !errors.Is(err, core.ErrInvalid):
				t.Fatalf("PollDeviceIO panic = %v, want an error matching ErrInvalid", err)
			case !tc.ok && p.A.Len() != 1:
				t.Fatalf("PollDeviceIO moved packets through a refused device: %d left, want 1", p.A.Len())
			}
		})
	}
}

// pollRecover runs one PollDeviceIO and returns what it panicked with.
func pollRecover(ns *core.Netstack, dev core.PollDevice) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if err, _ = r.(error); err == nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}
	}()
	ns.PollDeviceIO(dev)
	return nil
}
