package core_test

import (
	"bytes"
	"context"
	"net/netip"
	"testing"

	"github.com/netcore-go/netcore/core"
	"go.uber.org/goleak"
)

// TestSeedExample is the seed crate's README example, translated 1:1.
func TestSeedExample(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx := context.Background()

	// Construct a new netstack:
	stack, err := core.New(core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Close()
	// Grab a channel through which we can send commands:
	channel := stack.CommandChannel()

	// Process the upcoming bind and send commands in the background.
	done := make(chan *core.Netstack)
	go func() {
		for range 2 {
			cmd, err := stack.WaitForCmd(0)
			if err != nil {
				t.Error(err)
				break
			}
			stack.ProcessOneCmd(cmd)
		}
		done <- stack
	}()

	// Send a command to bind a UDP socket:
	endpoint := netip.MustParseAddrPort("127.0.0.1:1000")
	resp, err := channel.Request(ctx, core.NoHandle, core.UDPBind{Local: endpoint})
	if err != nil {
		t.Fatalf("bind: %v", err)
	}
	bound := resp.(core.UDPBound)
	if bound.Local != endpoint || !bound.Handle.IsValid() {
		t.Fatalf("bound = %+v, want local %v and a handle", bound, endpoint)
	}
	t.Logf("bound udp socket to %v", bound.Local)

	// Issue a command to send a UDP packet over the channel:
	err = channel.RequestNonblocking(bound.Handle, core.UDPSend{
		To:  netip.MustParseAddrPort("1.2.3.4:80"),
		Buf: []byte("hello"),
	})
	if err != nil {
		t.Fatalf("send: %v", err)
	}

	// Wait for the goroutine to finish processing the two commands:
	stack = <-done

	// Pump the netstack to produce the IP packet that needs to be sent out:
	pipe := core.NewPipe(0)
	stack.PollDeviceIO(&core.PipeDev{End: pipe.A, Medium: core.MediumIP, MTU: 1500})

	// Receive the packet from the pipe device:
	packet, ok := pipe.B.TryRecv()
	if !ok {
		t.Fatal("no packet on the pipe")
	}
	if got, want := len(packet), 20+8+len("hello"); got != want {
		t.Errorf("len(packet) = %d, want %d", got, want)
	}
	if packet[0]>>4 != 4 {
		t.Errorf("IP version = %d, want 4", packet[0]>>4)
	}
	if !bytes.HasSuffix(packet, []byte("hello")) {
		t.Errorf("packet %x does not end with hello", packet)
	}
}
