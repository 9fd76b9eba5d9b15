package core_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/dialer"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
)

// Drive a stack by hand, as the seed crate's README does: process two
// commands, then pump the packet they produced out through a pipe.
func Example() {
	stack, err := core.New(core.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer stack.Close()
	channel := stack.CommandChannel()

	done := make(chan struct{})
	go func() { // the engine, for two commands
		defer close(done)
		for range 2 {
			cmd, _ := stack.WaitForCmd(0)
			stack.ProcessOneCmd(cmd)
		}
	}()
	resp, _ := channel.Request(context.Background(), core.NoHandle,
		core.UDPBind{Local: netip.MustParseAddrPort("127.0.0.1:1000")})
	bound := resp.(core.UDPBound)
	fmt.Println("bound", bound.Local)
	channel.RequestNonblocking(bound.Handle, core.UDPSend{To: netip.MustParseAddrPort("1.2.3.4:80"), Buf: []byte("hello")})
	<-done // this goroutine drives the stack from here on

	pipe := core.NewPipe(0)
	stack.PollDeviceIO(&core.PipeDev{End: pipe.A, MTU: 1500})
	if packet, ok := pipe.B.TryRecv(); ok {
		fmt.Printf("IPv%d packet, %d bytes, ends with %q\n", packet[0]>>4, len(packet), packet[len(packet)-5:])
	}
	// Output:
	// bound 127.0.0.1:1000
	// IPv4 packet, 33 bytes, ends with "hello"
}

// Two running stacks joined by an in-memory pipe exchange a UDP datagram
// through the raw command channel.
func ExampleJoinPipe() {
	a, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	b, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends both Runs, which close the stacks
	go a.Run(ctx)
	go b.Run(ctx)
	if err := core.JoinPipe(a, b, 0); err != nil {
		log.Fatal(err)
	}

	chA, chB := a.CommandChannel(), b.CommandChannel()
	resp, _ := chB.Request(ctx, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("192.0.2.2:7")})
	server := resp.(core.UDPBound)
	resp, _ = chA.Request(ctx, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("192.0.2.1:0")})
	client := resp.(core.UDPBound)

	chA.Request(ctx, client.Handle, core.UDPSend{To: server.Local, Buf: []byte("over the pipe")})
	buf := make([]byte, 100)
	resp, _ = chB.Request(ctx, server.Handle, &core.UDPRecv{Buf: buf})
	got := resp.(core.UDPRecvd)
	fmt.Printf("%q from %v\n", buf[:got.N], got.From.Addr())
	// Output: "over the pipe" from 192.0.2.1
}

// Config.PCAP captures every packet the stack sends or receives to a
// pcap file.
func ExampleNew_pcap() {
	f, err := os.CreateTemp("", "netcore-*.pcap")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()

	// Every packet stack A sends or receives goes to the file; tshark -r
	// or Wireshark read it.
	a, err := core.New(core.Config{
		Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
		PCAP:  f,
	})
	if err != nil {
		log.Fatal(err)
	}
	// ... use a ...
	a.Close()                  // the capture is complete once Close returns
	fmt.Println(a.PCAPError()) // nil, or the error that stopped the capture
	// Output: <nil>
}

// twoStacks runs two stacks joined by an in-memory pipe, A at 192.0.2.1
// and B at 192.0.2.2, and returns them with a function that stops both.
func twoStacks() (a, b *core.Netstack, stop func()) {
	return testnet.Stacks()
}

// A stack's counters (Stats), one connection's (TCPConn.Info), and the
// stack's log lines (Config.Logf).
func ExampleNetstack_Stats() {
	a, b, stop := twoStacks()
	defer stop()
	ln, err := listener.Listen(b.CommandChannel(), "tcp", "192.0.2.2:9")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() { // a discard server
		if c, err := ln.Accept(); err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	d := &dialer.Dialer{Channel: a.CommandChannel()}
	c, err := d.DialContext(context.Background(), "tcp", "192.0.2.2:9")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Write(make([]byte, 1<<20))

	// One connection, as ss -ti shows it: state, RTT, RTO, cwnd,
	// segments, retransmits, and the bytes written and read through it.
	info, err := c.(*netconn.TCPConn).Info()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.State, info.BytesWritten, info.RTO > 0)

	// The stack's counters, from any goroutine, before Run, while it
	// runs and after Close (then the final figures).
	st := a.Stats()
	fmt.Println(st.TCPStreams, st.TCPActiveOpens, st.PacketsOut > 0)

	// Logf gets the stack's log lines, netcore's and gVisor's ("Martian
	// packet dropped…"); without it nothing is logged, and nothing goes
	// to stderr.
	logged, err := core.New(core.Config{Logf: func(format string, args ...any) {
		log.Printf("stack C: "+format, args...)
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer logged.Close()
	// Output:
	// ESTABLISHED 1048576 true
	// 1 1 true
}

// A stack with one address, run until its context ends, asked for its
// figures over its command channel.
func ExampleNew() {
	// A stack with one address; the zero Config works too.
	stack, err := core.New(core.Config{
		Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
		MTU:   1500,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ending Run's context closes the stack
	go stack.Run(ctx)

	resp, err := stack.CommandChannel().Request(ctx, core.NoHandle, core.GetStats{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("sockets:", resp.(core.Stats).Sockets)
	// Output: sockets: 0
}

// A connect that sets keep-alive on its stream in the same request
// (TCPConnect.KeepAlive), and the counters that show who served it: the
// dialing goroutine itself, holding the owner token while the engine
// goroutine was idle (Stats.CallerTurns), or the engine goroutine
// (Stats.EngineWakeups).
func ExampleKeepAlive() {
	a, b, stop := twoStacks()
	defer stop()
	ctx := context.Background()
	ln, err := b.CommandChannel().Request(ctx, core.NoHandle, core.TCPListen{Local: netip.MustParseAddrPort("192.0.2.2:80")})
	if err != nil {
		log.Fatal(err)
	}
	go b.CommandChannel().Request(ctx, ln.(core.TCPListening).Handle, core.TCPAccept{})
	ch := a.CommandChannel()
	resp, err := ch.Request(ctx, core.NoHandle, core.TCPConnect{
		Remote:    netip.MustParseAddrPort("192.0.2.2:80"),
		KeepAlive: core.KeepAlive{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 5},
	})
	if err != nil {
		log.Fatal(err)
	}
	h := resp.(core.TCPConnected).Handle
	idle, err := ch.Request(ctx, h, core.GetSockOpt{Opt: core.OptKeepAliveIdle})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(time.Duration(idle.(core.SockOptValue).Value), a.Stats().CallerTurns > 0)
	// Output: 30s true
}

// A TCP connection through the raw command channel with Connect and
// Accept: the same requests as TCPConnect and TCPAccept through Request,
// with the replies by value (no allocation for the command or the reply).
func ExampleChannel_Connect() {
	a, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	b, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends both Runs, which close the stacks
	go a.Run(ctx)
	go b.Run(ctx)
	if err := core.JoinPipe(a, b, 0); err != nil {
		log.Fatal(err)
	}
	chA, chB := a.CommandChannel(), b.CommandChannel()
	resp, err := chB.Request(ctx, core.NoHandle, core.TCPListen{Local: netip.MustParseAddrPort("192.0.2.2:80")})
	if err != nil {
		log.Fatal(err)
	}
	ln := resp.(core.TCPListening)

	accepted := make(chan core.TCPAccepted, 1)
	go func() {
		acc, err := chB.Accept(ctx, ln.Handle, core.TCPAccept{})
		if err != nil {
			log.Fatal(err)
		}
		accepted <- acc
	}()
	conn, err := chA.Connect(ctx, core.TCPConnect{Remote: ln.Local})
	if err != nil {
		log.Fatal(err)
	}
	acc := <-accepted
	fmt.Println("connected to", conn.Remote, "accepted from", acc.Remote == conn.Local)
	// Output: connected to 192.0.2.2:80 accepted from true
}
