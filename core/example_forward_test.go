package core_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"

	"github.com/netcore-go/netcore/core"
)

// A forwarder opened with HandleTCP serves each accepted TCP flow on the
// goroutine that completed its handshake: here it echoes one byte.
func ExampleForwardOpen_handleTCP() {
	client, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	fwd, _ := core.New(core.Config{Forward: &core.ForwardConfig{}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends both Runs, which close the stacks
	go client.Run(ctx)
	go fwd.Run(ctx)
	if err := core.JoinPipe(client, fwd, 0); err != nil {
		log.Fatal(err)
	}

	ch := fwd.CommandChannel()
	seen := make(chan core.Flow, 1)
	handle := func(fl core.Flow) {
		defer ch.Request(context.Background(), fl.Handle, core.CloseSocket{})
		seen <- fl
		buf := make([]byte, 1)
		if _, err := ch.Request(ctx, fl.Handle, core.TCPRecv{Buf: buf}); err == nil {
			ch.Request(ctx, fl.Handle, core.TCPSend{Buf: buf})
		}
	}
	if _, err := ch.Request(ctx, core.NoHandle, core.ForwardOpen{AcceptTCP: true, HandleTCP: handle}); err != nil {
		log.Fatal(err)
	}

	cc := client.CommandChannel()
	resp, err := cc.Request(ctx, core.NoHandle, core.TCPConnect{Remote: netip.MustParseAddrPort("198.51.100.7:80")})
	if err != nil {
		log.Fatal(err)
	}
	c := resp.(core.TCPConnected).Handle
	cc.Request(ctx, c, core.TCPSend{Buf: []byte{42}})
	buf := make([]byte, 1)
	cc.Request(ctx, c, core.TCPRecv{Buf: buf})
	fl := <-seen
	fmt.Printf("%v -> %v echoed %d\n", fl.Remote.Addr(), fl.Local, buf[0])
	// Output: 192.0.2.1 -> 198.51.100.7:80 echoed 42
}
