package core_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// martianChildEnv selects the child's part of TestLogfGetsGVisorLines:
// "logf" (a stack with Logf) or "silent" (without).
const martianChildEnv = "NETCORE_MARTIAN_CHILD"

// gVisor says "Martian packet dropped" at most once a minute per process,
// so each case runs in a fresh child process. The child makes a stack,
// feeds it a packet from 127.0.0.1 through its device and reports what its
// Logf got on stdout; the parent checks that report and that the child's
// stderr stayed empty.
func TestLogfGetsGVisorLines(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary again")
	}
	for _, mode := range []string{"logf", "silent"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMartianChild$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), martianChildEnv+"="+mode)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("child: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			if stderr.Len() != 0 {
				t.Errorf("child wrote to stderr:\n%s", stderr.String())
			}
			out := stdout.String()
			if !strings.Contains(out, "invalid source packets: 1\n") {
				t.Errorf("child did not see the martian counted:\n%s", out)
			}
			const line = "logf: gvisor: Martian packet dropped with loopback source address."
			if got := strings.Contains(out, line); got != (mode == "logf") {
				t.Errorf("Logf line present = %v, want %v:\n%s", got, mode == "logf", out)
			}
		})
	}
}

// TestMartianChild is the child of TestLogfGetsGVisorLines.
func TestMartianChild(t *testing.T) {
	mode := os.Getenv(martianChildEnv)
	if mode == "" {
		t.Skip("run by TestLogfGetsGVisorLines")
	}
	var mu sync.Mutex
	var lines []string
	cfg := core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}
	if mode == "logf" {
		cfg.Logf = func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, fmt.Sprintf(format, args...))
		}
	}
	ns, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pipe := core.NewPipe(0)
	if err := ns.AttachDevice(&core.PipeDev{End: pipe.A, MTU: 1500}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ns.Run(context.Background()) }()
	if err := pipe.B.Send(martian()); err != nil {
		t.Fatal(err)
	}
	// Wait, with growing pauses, for the stack to count it.
	for wait := time.Millisecond; ns.Stats().IPInvalidSourceIn == 0 && wait < 30*time.Second; wait *= 2 {
		time.Sleep(wait)
	}
	ns.Close()
	<-done
	fmt.Printf("invalid source packets: %d\n", ns.Stats().IPInvalidSourceIn)
	mu.Lock()
	defer mu.Unlock()
	for _, l := range lines {
		fmt.Printf("logf: %s\n", l)
	}
}

// martian is an IPv4 UDP packet from 127.0.0.1 to 192.0.2.1, which a
// stack must drop when it arrives from a device.
func martian() []byte {
	pkt := make([]byte, header.IPv4MinimumSize+header.UDPMinimumSize)
	ip := header.IPv4(pkt)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(pkt)),
		TTL:         64,
		Protocol:    uint8(header.UDPProtocolNumber),
		SrcAddr:     tcpip.AddrFrom4([4]byte{127, 0, 0, 1}),
		DstAddr:     tcpip.AddrFrom4([4]byte{192, 0, 2, 1}),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	udp := header.UDP(pkt[header.IPv4MinimumSize:])
	udp.Encode(&header.UDPFields{SrcPort: 9, DstPort: 9, Length: header.UDPMinimumSize})
	return pkt
}

// failingDevice fails its first read, as a device that went away does.
type failingDevice struct{ closed chan struct{} }

func (d *failingDevice) ReadPackets([][]byte, []int) (int, error) {
	return 0, errors.New("device gone")
}
func (d *failingDevice) WritePackets(p [][]byte) (int, error) { return len(p), nil }
func (d *failingDevice) BatchSize() int                       { return 1 }
func (d *failingDevice) Close() error                         { close(d.closed); return nil }

// netcore's own lines go to the stack's Logf: here, a device that failed
// while the stack ran.
func TestLogfGetsNetcoreLines(t *testing.T) {
	leakCheck(t)
	got := make(chan string, 16)
	ns, err := core.New(core.Config{Logf: func(format string, args ...any) {
		select {
		case got <- fmt.Sprintf(format, args...):
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := ns.AttachDevice(&failingDevice{closed: make(chan struct{})}); err != nil {
		t.Fatal(err)
	}
	const want = "netcore: device read failed, its pump stopped: device gone"
	for line := range got {
		if line == want {
			return
		}
		t.Logf("other line: %s", line)
	}
}
