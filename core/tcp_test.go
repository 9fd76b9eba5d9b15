package core_test

import (
	"bytes"
	"io"
	"net/netip"
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
)

func TestTCPEcho(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct {
		name string
		addr netip.Addr
	}{{"IPv4", testnet.AddrB}, {"IPv6", testnet.Addr6B}} {
		t.Run(tc.name, func(t *testing.T) {
			p := testnet.NewPair(t)
			a, b := p.A.CommandChannel(), p.B.CommandChannel()
			cli, srv := tcpPair(t, p, tc.addr)
			msg := []byte("hello, netcore")
			if s := do[core.TCPSent](t, a, cli, &core.TCPSend{Buf: msg}); s.N != len(msg) {
				t.Fatalf("sent %d, want %d", s.N, len(msg))
			}
			buf := make([]byte, 100)
			got := do[core.TCPRecvd](t, b, srv, &core.TCPRecv{Buf: buf})
			do[core.TCPSent](t, b, srv, core.TCPSend{Buf: buf[:got.N]})
			back := make([]byte, 100)
			r := do[core.TCPRecvd](t, a, cli, core.TCPRecv{Buf: back})
			if !bytes.Equal(back[:r.N], msg) {
				t.Fatalf("echo = %q, want %q", back[:r.N], msg)
			}
			do[core.OK](t, a, cli, core.CloseSocket{})
			if _, err := try(b, srv, core.TCPRecv{Buf: buf}); err != io.EOF {
				t.Fatalf("recv after peer close: err = %v, want io.EOF", err)
			}
			do[core.OK](t, b, srv, core.CloseSocket{})
		})
	}
}
