package listener_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
)

// A forwarding stack takes a connection to an address it does not own
// and hands it to the Forwarder's handler, which sees the original
// destination; Allow refuses port 25 before the handshake.
func ExampleForwarder() {
	client, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	fwd, _ := core.New(core.Config{Forward: &core.ForwardConfig{
		Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
	}})
	core.JoinPipe(client, fwd, 0)
	go client.Run(context.Background())
	go fwd.Run(context.Background())
	defer client.Close()
	defer fwd.Close()

	f := &listener.Forwarder{
		Allow: func(ctx context.Context, fl core.Flow) core.Verdict {
			if fl.Local.Port() == 25 {
				return core.Reset // or core.Unreachable: ICMP port unreachable
			}
			return core.Accept
		},
		HandleTCP: func(ctx context.Context, c *netconn.TCPConn) {
			// A proxy would dial c.LocalAddr() here and splice the two.
			fmt.Fprintf(c, "%v asked for %v", c.RemoteAddr().(*net.TCPAddr).IP, c.LocalAddr())
		},
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx, fwd.CommandChannel()) }()
	defer func() { stop(); <-served }()
	for fwd.Stats().Forward.Open == 0 {
		time.Sleep(time.Millisecond) // until Serve has opened the forwarder
	}

	ch := client.CommandChannel()
	c, err := netconn.DialTCP(context.Background(), ch, "tcp", netip.AddrPort{}, netip.MustParseAddrPort("198.51.100.7:80"))
	if err != nil {
		panic(err)
	}
	msg, _ := io.ReadAll(c)
	c.Close()
	fmt.Println(string(msg))
	_, err = netconn.DialTCP(context.Background(), ch, "tcp", netip.AddrPort{}, netip.MustParseAddrPort("198.51.100.7:25"))
	fmt.Println(err)
	// Output:
	// 192.0.2.1 asked for 198.51.100.7:80
	// dial tcp 198.51.100.7:25: connection refused
}

// HandleEcho decides each ping to a forwarded address: here only
// 198.51.100.7 looks alive (a real handler might ping the host first).
func ExampleForwarder_HandleEcho() {
	client, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	fwd, _ := core.New(core.Config{Forward: &core.ForwardConfig{
		Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
	}})
	core.JoinPipe(client, fwd, 0)
	go client.Run(context.Background())
	go fwd.Run(context.Background())
	defer client.Close()
	defer fwd.Close()

	alive := netip.MustParseAddr("198.51.100.7")
	f := &listener.Forwarder{HandleEcho: func(ctx context.Context, e listener.Echo) bool {
		return e.Local == alive
	}}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx, fwd.CommandChannel()) }()
	defer func() { stop(); <-served }()
	for fwd.Stats().Forward.Open == 0 {
		time.Sleep(time.Millisecond) // until Serve has opened the forwarder
	}

	c, err := netconn.DialPing(context.Background(), client.CommandChannel(), "ping4", netip.Addr{}, alive)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Write(netconn.EchoRequest(false, 1, []byte("ping")))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	fmt.Printf("reply from %v: %q %v\n", alive, buf[8:n], err)
	// Output:
	// reply from 198.51.100.7: "ping" <nil>
}
