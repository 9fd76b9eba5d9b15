package netconn_test

import (
	"context"
	"fmt"
	"io"
	"net/netip"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/netconn"
)

// twoStacks runs two stacks joined by an in-memory pipe and returns their
// channels and a function that stops both.
func twoStacks() (a, b core.Channel, stop func()) {
	sa, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	sb, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	core.JoinPipe(sa, sb, 0)
	done := make(chan struct{}, 2)
	for _, s := range []*core.Netstack{sa, sb} {
		go func() { s.Run(context.Background()); done <- struct{}{} }()
	}
	return sa.CommandChannel(), sb.CommandChannel(), func() { sa.Close(); sb.Close(); <-done; <-done }
}

// A TCP echo between two stacks: the server on B listens and echoes, the
// client on A dials, writes, half-closes and reads the echo.
func Example() {
	a, b, stop := twoStacks()
	defer stop()
	ctx := context.Background()

	ln, err := netconn.ListenTCP(ctx, b, "tcp", netip.MustParseAddrPort("192.0.2.2:7"), 0)
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c) // echo until the client half-closes
	}()

	c, err := netconn.DialTCP(ctx, a, "tcp", netip.AddrPort{}, ln.AddrPort())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Write([]byte("hello, netcore"))
	c.CloseWrite()
	echo, err := io.ReadAll(c)
	fmt.Printf("%s %v from %v\n", echo, err, c.RemoteAddr())
	// Output: hello, netcore <nil> from 192.0.2.2:7
}

// Pinging a stack's neighbour with an ICMP echo socket.
func ExampleDialPing() {
	a, _, stop := twoStacks()
	defer stop()
	c, err := netconn.DialPing(context.Background(), a, "ping4", netip.Addr{}, netip.MustParseAddr("192.0.2.2"))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Write(netconn.EchoRequest(false, 1, []byte("are you there?")))
	reply := make([]byte, 1500)
	n, err := c.Read(reply)
	fmt.Printf("type %d, %d bytes, data %q, %v\n", reply[0], n, reply[8:n], err)
	// Output: type 0, 22 bytes, data "are you there?", <nil>
}

// A UDP exchange: ListenUDP on one stack, DialUDP from the other.
func ExampleListenUDP() {
	a, b, stop := twoStacks()
	defer stop()
	ctx := context.Background()
	srv, _ := netconn.ListenUDP(ctx, b, "udp4", netip.MustParseAddrPort("0.0.0.0:5353"))
	defer srv.Close()
	cli, _ := netconn.DialUDP(ctx, a, "udp", netip.AddrPort{}, netip.MustParseAddrPort("192.0.2.2:5353"))
	defer cli.Close()
	cli.Write([]byte("query"))
	buf := make([]byte, 512)
	n, from, _ := srv.ReadFromUDPAddrPort(buf)
	fmt.Printf("%s from %v\n", buf[:n], from.Addr())
	// Output: query from 192.0.2.1
}
