package core_test

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// recordingDev is a PipeDev that keeps a copy of every packet the stack
// writes to it.
type recordingDev struct {
	pd  *core.PipeDev
	mu  sync.Mutex
	out [][]byte // +checklocks:mu
}

func (d *recordingDev) ReadPackets(b [][]byte, s []int) (int, error) { return d.pd.ReadPackets(b, s) }
func (d *recordingDev) BatchSize() int                               { return d.pd.BatchSize() }
func (d *recordingDev) Close() error                                 { return d.pd.Close() }

func (d *recordingDev) WritePackets(pkts [][]byte) (int, error) {
	d.mu.Lock()
	for _, p := range pkts {
		d.out = append(d.out, bytes.Clone(p))
	}
	d.mu.Unlock()
	return d.pd.WritePackets(pkts)
}

// pureACK reports whether an IPv4 packet is a TCP segment with only ACK set
// and no payload.
func pureACK(p []byte) bool {
	ip := header.IPv4(p)
	if len(p) < header.IPv4MinimumSize || ip.TransportProtocol() != header.TCPProtocolNumber {
		return false
	}
	tcp := header.TCP(ip.Payload())
	return tcp.Flags() == header.TCPFlagAck && len(tcp.Payload()) == 0
}

// TestRepeatedACKs: a stack sends each pure ACK to its device twice, back
// to back, and every other segment once; Config.SingleACKs turns it off.
// The sender's link probes are off: on a slow machine its stall probe
// resends a segment, and the receiver's gVisor answers it with a copy of
// its last ACK, which would read as a repeat.
func TestRepeatedACKs(t *testing.T) {
	leakCheck(t)
	for _, single := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "SingleACKs"}[single], func(t *testing.T) {
			cfg := func(a netip.Addr) core.Config {
				return core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(a, 24)}, SingleACKs: single, DisableRecoveryProbes: true}
			}
			p := testnet.Pair{A: testnet.Start(t, cfg(testnet.AddrA)), B: testnet.Start(t, cfg(testnet.AddrB))}
			pipe := core.NewPipe(0)
			if err := p.A.AttachDevice(&core.PipeDev{End: pipe.A}); err != nil {
				t.Fatal(err)
			}
			devB := &recordingDev{pd: &core.PipeDev{End: pipe.B}}
			if err := p.B.AttachDevice(devB); err != nil {
				t.Fatal(err)
			}
			cli, srv := tcpPair(t, p, testnet.AddrB)
			a, b := p.A.CommandChannel(), p.B.CommandChannel()
			msg := bytes.Repeat([]byte("netcore "), 64<<10)
			go try(a, cli, &core.TCPSend{Buf: msg})
			if got := readN(t, b, srv, len(msg)); !bytes.Equal(got, msg) {
				t.Fatal("stream corrupted")
			}
			st := do[core.Stats](t, b, core.NoHandle, core.GetStats{})
			devB.mu.Lock()
			defer devB.mu.Unlock()
			acks, pairs := 0, 0
			paired := false // devB.out[i-1] is the second of a pair
			for i, pkt := range devB.out {
				if !pureACK(pkt) {
					paired = false
					continue
				}
				acks++
				// Two equal ACKs gVisor sent in a row, each repeated,
				// are two pairs, not three.
				if i > 0 && !paired && bytes.Equal(devB.out[i-1], pkt) {
					pairs++
					paired = true
					continue
				}
				paired = false
			}
			switch {
			case acks == 0:
				t.Fatal("B sent no pure ACK")
			case single && (pairs != 0 || st.ACKsRepeated != 0):
				t.Errorf("SingleACKs: %d repeated ACKs, Stats.ACKsRepeated %d; want 0", pairs, st.ACKsRepeated)
			case !single && (acks != 2*pairs || uint64(pairs) != st.ACKsRepeated):
				t.Errorf("%d pure ACKs, %d back-to-back pairs, Stats.ACKsRepeated %d; want every ACK twice", acks, pairs, st.ACKsRepeated)
			}
		})
	}
}

// TestJoinPipeDoesNotRepeatACKs: joined stacks lose nothing in between, so
// their ACKs go once.
func TestJoinPipeDoesNotRepeatACKs(t *testing.T) {
	leakCheck(t)
	p := testnet.NewPair(t)
	cli, srv := tcpPair(t, p, testnet.AddrB)
	msg := bytes.Repeat([]byte("x"), 1<<20)
	go try(p.A.CommandChannel(), cli, &core.TCPSend{Buf: msg})
	readN(t, p.B.CommandChannel(), srv, len(msg))
	if st := do[core.Stats](t, p.B.CommandChannel(), core.NoHandle, core.GetStats{}); st.ACKsRepeated != 0 {
		t.Fatalf("ACKsRepeated = %d over JoinPipe, want 0", st.ACKsRepeated)
	}
}
