package main

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
)

// tun2socks is -mode proxy's forwarder: every TCP and UDP flow the
// forwarding stack takes is dialled again, to its original destination,
// with Go's net, and spliced to it. gateway, the address the namespace
// sees the host at, is dialled on the host's loopback instead.
func tun2socks(gateway netip.Addr) *listener.Forwarder {
	target := func(dst net.Addr) string {
		ap := addrPort(dst)
		if ap.Addr() == gateway {
			ap = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port())
		}
		return ap.String()
	}
	return &listener.Forwarder{
		HandleTCP: func(ctx context.Context, c *netconn.TCPConn) {
			var d net.Dialer
			up, err := d.DialContext(ctx, "tcp", target(c.LocalAddr()))
			if err != nil {
				return // Forwarder closes c: the client sees the flow end
			}
			defer up.Close()
			spliceTCP(c, up.(*net.TCPConn))
		},
		HandleUDP: func(ctx context.Context, c *listener.UDPFlow) {
			up, err := net.Dial("udp", target(c.LocalAddr()))
			if err != nil {
				return
			}
			defer up.Close()
			go copyDatagrams(c, up) // ends when up is closed
			copyDatagrams(up, c)    // ends when the flow expires
		},
	}
}

// spliceTCP copies both ways, passing each side's half-close on, until
// both directions are done.
func spliceTCP(a *netconn.TCPConn, b *net.TCPConn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(b, a); b.CloseWrite() }()
	go func() { defer wg.Done(); io.Copy(a, b); a.CloseWrite() }()
	wg.Wait()
}

// copyDatagrams moves datagrams from src to dst until src fails.
func copyDatagrams(dst io.Writer, src io.Reader) {
	buf := make([]byte, 65535)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		dst.Write(buf[:n])
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	return netip.AddrPort{}
}
