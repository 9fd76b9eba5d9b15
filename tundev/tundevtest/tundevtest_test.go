package tundevtest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/tundev/tundevtest"
	"go.uber.org/goleak"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.zx2c4.com/wireguard/tun"
)

func TestDeviceBatches(t *testing.T) {
	d := tundevtest.NewDevice(8)
	for _, p := range []string{"a", "bb", "ccc"} {
		d.Inbound <- []byte(p)
	}
	bufs := [][]byte{make([]byte, 10), make([]byte, 10), make([]byte, 10), make([]byte, 10)}
	sizes := make([]int, 4)
	n, err := d.ReadPackets(bufs, sizes)
	if err != nil || n != 3 || string(bufs[2][:sizes[2]]) != "ccc" {
		t.Fatalf("ReadPackets = %d, %v, third %q; want 3 packets", n, err, bufs[2][:sizes[2]])
	}
	src := [][]byte{[]byte("x"), []byte("yy")}
	if n, err := d.WritePackets(src); n != 2 || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	src[0][0] = 'z' // the device copied
	if got := <-d.Outbound; string(got) != "x" {
		t.Fatalf("outbound = %q, want x", got)
	}
}

func TestCloseWakes(t *testing.T) {
	defer goleak.VerifyNone(t)
	d := tundevtest.NewDevice(0)
	tn := tundevtest.NewTUN(0)
	errs := make(chan error, 4)
	bufs, sizes := [][]byte{make([]byte, 10)}, []int{0}
	go func() { _, err := d.ReadPackets(bufs, sizes); errs <- err }()
	go func() { _, err := d.WritePackets([][]byte{{1}}); errs <- err }()
	go func() { _, err := tn.Read([][]byte{make([]byte, 10)}, []int{0}, 0); errs <- err }()
	go func() { _, err := tn.Write([][]byte{{1}}, 0); errs <- err }()
	time.Sleep(10 * time.Millisecond)
	d.Close()
	tn.Close()
	for range 4 {
		if err := <-errs; !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) {
			t.Fatalf("blocked call after Close: %v", err)
		}
	}
	if err := d.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close = %v, want net.ErrClosed", err)
	}
	if _, ok := <-tn.Events(); !ok {
		t.Fatal("Events: want EventUp first")
	}
	if _, ok := <-tn.Events(); ok {
		t.Fatal("Events not closed after Close")
	}
}

// TestDeviceDrivesStack answers a ping sent into a stack through a Device.
func TestDeviceDrivesStack(t *testing.T) {
	defer goleak.VerifyNone(t)
	stackAddr, peer := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.1")
	t.Run("stack", func(t *testing.T) {
		ns := testnet.Start(t, core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(stackAddr, 24)}})
		d := tundevtest.NewDevice(16)
		if err := ns.AttachDevice(d); err != nil {
			t.Fatal(err)
		}
		d.Inbound <- echoRequest(t, peer, stackAddr)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		select {
		case reply := <-d.Outbound:
			if len(reply) < 20 || reply[9] != 1 || !bytes.Equal(reply[12:16], stackAddr.AsSlice()) {
				t.Fatalf("reply % x is not ICMP from the stack", reply)
			}
		case <-ctx.Done():
			t.Fatal("no echo reply")
		}
	})
}

func TestTUNIsTunDevice(t *testing.T) {
	var dev tun.Device = tundevtest.NewTUN(4)
	defer dev.Close()
	dev.(*tundevtest.TUN).Inbound <- []byte("pkt")
	bufs, sizes := [][]byte{make([]byte, 20)}, []int{0}
	if n, err := dev.Read(bufs, sizes, 16); n != 1 || err != nil || string(bufs[0][16:16+sizes[0]]) != "pkt" {
		t.Fatalf("Read at offset 16 = %d, %v, %q", n, err, bufs[0][16:16+sizes[0]])
	}
	buf := append(make([]byte, 16), "out"...)
	if n, err := dev.Write([][]byte{buf}, 16); n != 1 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := <-dev.(*tundevtest.TUN).Outbound; string(got) != "out" {
		t.Fatalf("outbound = %q", got)
	}
}

// TestJoin joins two TUN doubles: what one's reader gets, the other's
// writer sends, both ways, in order; closing either one ends the join (Join
// closes the other, and wait returns) with no goroutine left.
func TestJoin(t *testing.T) {
	for _, closeA := range []bool{true, false} {
		t.Run(fmt.Sprintf("closeA=%v", closeA), func(t *testing.T) { testJoin(t, closeA) })
	}
}

func testJoin(t *testing.T, closeA bool) {
	defer goleak.VerifyNone(t)
	a, b := tundevtest.NewTUN(8), tundevtest.NewTUN(8)
	wait := tundevtest.Join(a, b)
	for _, p := range []string{"one", "two"} {
		a.Inbound <- []byte(p)
	}
	b.Inbound <- []byte("back")
	for _, want := range []string{"one", "two"} {
		if got := <-b.Outbound; string(got) != want {
			t.Fatalf("b sent %q, want %q", got, want)
		}
	}
	if got := <-a.Outbound; string(got) != "back" {
		t.Fatalf("a sent %q, want back", got)
	}
	closed, other := a, b
	if !closeA {
		closed, other = b, a
	}
	closed.Close()
	ended := make(chan struct{})
	go func() { wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("join still running 10s after one device was closed")
	}
	select {
	case <-other.Done():
	default:
		t.Fatal("the other device is still open after the join ended")
	}
	if err := closed.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close of the closed device = %v, want os.ErrClosed", err)
	}
}

// echoRequest builds an IPv4 ICMP echo request from src to dst.
func echoRequest(t *testing.T, src, dst netip.Addr) []byte {
	body, err := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 1, Seq: 1, Data: []byte("hi")}}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 20, 20+len(body))
	pkt[0], pkt[8], pkt[9] = 0x45, 64, 1
	pkt[2], pkt[3] = byte((20+len(body))>>8), byte(20+len(body))
	copy(pkt[12:16], src.AsSlice())
	copy(pkt[16:20], dst.AsSlice())
	sum := checksum(pkt)
	pkt[10], pkt[11] = byte(sum>>8), byte(sum)
	return append(pkt, body...)
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
