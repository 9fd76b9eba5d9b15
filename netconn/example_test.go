package netconn_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/dialer"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
	"golang.org/x/net/ipv4"
)

// twoStacks runs two stacks joined by an in-memory pipe, A at 192.0.2.1
// and B at 192.0.2.2, and returns them with a function that stops both.
func twoStacks() (a, b *core.Netstack, stop func()) {
	return testnet.Stacks()
}

// A TCP echo between two stacks: the server on B listens and echoes, the
// client on A dials, writes, half-closes and reads the echo.
func Example() {
	a, b, stop := twoStacks()
	defer stop()
	ctx := context.Background()

	ln, err := netconn.ListenTCP(ctx, b.CommandChannel(), "tcp", netip.MustParseAddrPort("192.0.2.2:7"), 0)
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

	c, err := netconn.DialTCP(ctx, a.CommandChannel(), "tcp", netip.AddrPort{}, ln.AddrPort())
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
	c, err := netconn.DialPing(context.Background(), a.CommandChannel(), "ping4", netip.Addr{}, netip.MustParseAddr("192.0.2.2"))
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
	srv, _ := netconn.ListenUDP(ctx, b.CommandChannel(), "udp4", netip.MustParseAddrPort("0.0.0.0:5353"))
	defer srv.Close()
	cli, _ := netconn.DialUDP(ctx, a.CommandChannel(), "udp", netip.AddrPort{}, netip.MustParseAddrPort("192.0.2.2:5353"))
	defer cli.Close()
	cli.Write([]byte("query"))
	buf := make([]byte, 512)
	n, from, _ := srv.ReadFromUDPAddrPort(buf)
	fmt.Printf("%s from %v\n", buf[:n], from.Addr())
	// Output: query from 192.0.2.1
}

// Datagrams in batches, as with golang.org/x/net/ipv4's PacketConn: one
// WriteBatch sends three datagrams and ReadBatch takes what has arrived,
// one request to the engine each.
func ExampleUDPConn_ReadBatch() {
	a, b, stop := twoStacks()
	defer stop()
	ctx := context.Background()

	srv, err := netconn.ListenUDP(ctx, b.CommandChannel(), "udp4", netip.MustParseAddrPort("192.0.2.2:5353"))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	cli, err := netconn.ListenUDP(ctx, a.CommandChannel(), "udp4", netip.MustParseAddrPort("192.0.2.1:4000"))
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	out := make([]ipv4.Message, 3)
	for i := range out {
		out[i].Buffers = [][]byte{fmt.Appendf(nil, "datagram %d", i)}
		out[i].Addr = srv.LocalAddr()
	}
	if _, err := cli.WriteBatch(out, 0); err != nil {
		log.Fatal(err)
	}
	in := make([]ipv4.Message, 8)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 1500)}
	}
	for got := 0; got < len(out); {
		n, err := srv.ReadBatch(in, 0) // waits for one, takes what is there
		if err != nil {
			log.Fatal(err)
		}
		for _, m := range in[:n] {
			fmt.Printf("%s from %v\n", m.Buffers[0][:m.N], m.Addr)
		}
		got += n
	}
	// Output:
	// datagram 0 from 192.0.2.1:4000
	// datagram 1 from 192.0.2.1:4000
	// datagram 2 from 192.0.2.1:4000
}

// A read deadline ends a Read with os.ErrDeadlineExceeded; errors match
// what Go's net returns: net.ErrClosed after Close, ECONNREFUSED where
// nobody listens.
func ExampleTCPConn_SetReadDeadline() {
	a, b, stop := twoStacks()
	defer stop()

	ln, _ := listener.Listen(b.CommandChannel(), "tcp", ":9000")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(time.Second) // says nothing
		}
	}()

	d := &dialer.Dialer{Channel: a.CommandChannel()}
	c, err := d.Dial("tcp", "192.0.2.2:9000")
	if err != nil {
		log.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = c.Read(make([]byte, 10))
	var opErr *net.OpError
	fmt.Println(errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &opErr) && opErr.Timeout())

	c.Close()
	_, err = c.Read(make([]byte, 10))
	fmt.Println(errors.Is(err, net.ErrClosed))

	_, err = d.Dial("tcp", "192.0.2.2:9001") // nobody listens
	fmt.Println(errors.Is(err, syscall.ECONNREFUSED))
	// Output:
	// true true
	// true
	// true
}

// A dial with keep-alive set in the connect request itself: the conn
// costs one request to the stack, where DialTCP followed by
// SetKeepAliveConfig costs five.
func ExampleDialTCPKeepAlive() {
	a, b, stop := twoStacks()
	defer stop()
	ctx := context.Background()
	ln, err := netconn.ListenTCP(ctx, b.CommandChannel(), "tcp", netip.MustParseAddrPort("192.0.2.2:7"), 0)
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	before := a.Stats().Commands
	ka := net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second}
	c, err := netconn.DialTCPKeepAlive(ctx, a.CommandChannel(), "tcp", netip.AddrPort{}, ln.AddrPort(), ka)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Println("requests:", a.Stats().Commands-before)
	// Output: requests: 1
}
