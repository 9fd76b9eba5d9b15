package core_test

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// udpFrame is an Ethernet frame to dstMAC carrying a UDP datagram from
// 10.0.0.2:4000 to dst (no UDP checksum).
func udpFrame(dstMAC core.MAC, dst netip.AddrPort, payload []byte) []byte {
	udp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], 4000)
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], payload)
	ip := make([]byte, header.IPv4MinimumSize)
	h := header.IPv4(ip)
	h.Encode(&header.IPv4Fields{TotalLength: uint16(20 + len(udp)), TTL: 64, Protocol: uint8(header.UDPProtocolNumber),
		SrcAddr: addr(netip.MustParseAddr("10.0.0.2")), DstAddr: addr(dst.Addr())})
	h.SetChecksum(^h.CalculateChecksum())
	return frame(dstMAC, peerMAC, etherIPv4, append(ip, udp...))
}

// TestEthernetBroadcastMulticast: as the kernel, the stack takes a
// broadcast frame to the limited broadcast address and delivers it to a
// socket bound to the port (it was dropped as an invalid destination
// before: setAddrs removed gVisor's own 255.255.255.255 endpoint); a frame to a multicast MAC passes the link
// (no frame counter moves) but a group the stack did not join is dropped
// by IP, never reaching the socket.
func TestEthernetBroadcastMulticast(t *testing.T) {
	leakCheck(t)
	s := newEthStack(t, core.Config{})
	serve := func(cmd core.Command) (core.Response, error) {
		go func() {
			r, err := s.ns.WaitForCmd(0)
			if err == nil {
				s.ns.ProcessOneCmd(r)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return s.ch.Request(ctx, core.NoHandle, cmd)
	}
	resp, err := serve(core.UDPBind{Local: netip.MustParseAddrPort("0.0.0.0:5353")})
	if err != nil {
		t.Fatal(err)
	}
	h := resp.(core.UDPBound).Handle
	// A receive parked on the socket, answered by the PollDeviceIO that
	// delivers the frames.
	buf := make([]byte, 64)
	got := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := s.ch.Request(ctx, h, core.UDPRecv{Buf: buf})
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(buf[:resp.(core.UDPRecvd).N])
	}()
	r, err := s.ns.WaitForCmd(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s.ns.ProcessOneCmd(r)
	s.send(t,
		udpFrame(core.MustParseMAC("01:00:5e:00:00:fb"), netip.MustParseAddrPort("224.0.0.251:5353"), []byte("group")),
		udpFrame(broadcast, netip.MustParseAddrPort("255.255.255.255:5353"), []byte("everyone")),
	)
	st := s.ns.Stats()
	if st.FramesOtherHost+st.FramesRunt+st.FramesOversized+st.FramesUnknownType != 0 || st.PacketsIn != 2 {
		t.Fatalf("frames dropped by the link: %+v; want both delivered", st)
	}
	if g := <-got; g != "everyone" {
		t.Fatalf("first datagram %q, want the broadcast one (the unjoined group's dropped)", g)
	}
	if st := s.ns.Stats(); st.UDPPacketsIn != 1 {
		t.Errorf("UDPPacketsIn = %d, want 1", st.UDPPacketsIn)
	}
}
