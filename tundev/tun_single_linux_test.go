package tundev_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
)

// A write of one packet to a TUN with offloads goes to the device
// directly, behind an empty virtio-net header (TUNStats.SingleWrites),
// not through wireguard-go's coalescing Write, and the kernel takes it as
// it took wireguard-go's: a UDP datagram arrives byte for byte, from the
// stack's address, and TCP (every reply and ACK of an echo) works, over
// IPv4 and IPv6. Without offloads wireguard-go writes, as before.
func TestTUNSingleWrites(t *testing.T) {
	for _, offloads := range []bool{true, false} {
		for _, fam := range families {
			t.Run(fmt.Sprintf("offloads=%v/%s", offloads, fam.name), func(t *testing.T) {
				e := newTUNEnv(t, offloads)
				var kc *net.UDPConn
				if err := e.ns.Do(func() (err error) {
					kc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(fam.host, 0)))
					return err
				}); err != nil {
					t.Fatalf("kernel UDP: %v", err)
				}
				defer kc.Close()
				b := must[core.UDPBound](t, e.ch, core.NoHandle, core.UDPBind{Local: netip.AddrPortFrom(fam.stack, 0)})
				msg := make([]byte, 1200)
				for i := range msg {
					msg[i] = byte(i * 7)
				}
				buf := make([]byte, 2048)
				retry(t, "stack → kernel", func() bool {
					must[core.UDPSent](t, e.ch, b.Handle, core.UDPSend{To: kc.LocalAddr().(*net.UDPAddr).AddrPort(), Buf: msg})
					kc.SetReadDeadline(time.Now().Add(time.Second))
					n, from, err := kc.ReadFromUDPAddrPort(buf)
					return err == nil && bytes.Equal(buf[:n], msg) && from == b.Local
				})
				ln := listenStack(t, e.ch, netip.AddrPortFrom(fam.stack, 8080))
				done := acceptEcho(ln)
				c := e.kernelDial(t, "tcp", netip.AddrPortFrom(fam.stack, 8080))
				checkEcho(t, c)
				c.Close()
				<-done
				got := e.tun.Stats().SingleWrites
				if offloads && got == 0 {
					t.Fatal("SingleWrites = 0: no packet went to the device directly")
				}
				if !offloads && got != 0 {
					t.Fatalf("SingleWrites = %d without offloads, want 0", got)
				}
			})
		}
	}
}
