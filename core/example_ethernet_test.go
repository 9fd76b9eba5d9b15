package core_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"

	"github.com/netcore-go/netcore/core"
)

// Two stacks on MediumEthernet, joined by an in-memory pipe, find each
// other with ARP before their first datagram crosses.
func Example_ethernet() {
	newStack := func(addr, mac string) *core.Netstack {
		ns, err := core.New(core.Config{
			Medium: core.MediumEthernet,
			MAC:    core.MustParseMAC(mac), // default: a random local one
			Addrs:  []netip.Prefix{netip.MustParsePrefix(addr)},
		})
		if err != nil {
			log.Fatal(err)
		}
		return ns
	}
	a := newStack("192.0.2.1/24", "02:00:00:00:00:0a")
	b := newStack("192.0.2.2/24", "02:00:00:00:00:0b")
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
	chA.Request(ctx, client.Handle, core.UDPSend{To: server.Local, Buf: []byte("over ethernet")})
	buf := make([]byte, 100)
	resp, _ = chB.Request(ctx, server.Handle, &core.UDPRecv{Buf: buf})
	fmt.Printf("%q\n", buf[:resp.(core.UDPRecvd).N])
	for _, n := range a.Neighbors() {
		fmt.Println(n.Addr, "is at", n.MAC, n.State)
	}
	// Output:
	// "over ethernet"
	// 192.0.2.2 is at 02:00:00:00:00:0b REACHABLE
}

// ParseMAC takes the forms net.ParseMAC does, for EUI-48 addresses only.
func ExampleParseMAC() {
	m, err := core.ParseMAC("02-00-5E-10-00-01")
	fmt.Println(m, m.IsGroup(), err)
	_, err = core.ParseMAC("02:00:5e:10:00:00:00:01")
	fmt.Println(err)
	// Output:
	// 02:00:5e:10:00:01 false <nil>
	// netcore: bad MAC "02:00:5e:10:00:00:00:01": invalid argument
}
