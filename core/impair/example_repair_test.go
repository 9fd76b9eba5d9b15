package impair_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/impair"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
)

// Two stacks with Config.LossRepair over a path of 5 ms each way at
// 100 Mbit/s that loses 3% of packets both ways: the sender's link repairs
// the losses itself and gVisor's congestion window is never cut for them.
func ExampleJoin_lossRepair() {
	stack := func(prefix string) *core.Netstack {
		ns, err := core.New(core.Config{LossRepair: true, Addrs: []netip.Prefix{netip.MustParsePrefix(prefix)}})
		if err != nil {
			log.Fatal(err)
		}
		go ns.Run(context.Background())
		return ns
	}
	a, b := stack("192.0.2.1/24"), stack("192.0.2.2/24")
	defer a.Close()
	defer b.Close()
	path := impair.Config{Loss: 0.03, Delay: 5 * time.Millisecond, Rate: 100_000_000}
	ab, ba := path, path
	ab.Seed, ba.Seed = 1, 2
	if _, _, err := impair.Join(a, b, ab, ba); err != nil {
		log.Fatal(err)
	}

	ln, err := listener.Listen(b.CommandChannel(), "tcp", "192.0.2.2:80")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	got := make(chan [32]byte)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, c)
		got <- [32]byte(h.Sum(nil))
	}()
	c, err := netconn.DialTCP(context.Background(), a.CommandChannel(), "tcp", netip.AddrPort{}, netip.MustParseAddrPort("192.0.2.2:80"))
	if err != nil {
		log.Fatal(err)
	}
	h := sha256.New()
	io.Copy(c, io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{}), 1<<20), h))
	c.CloseWrite()
	fmt.Println("intact:", <-got == [32]byte(h.Sum(nil)))
	c.Close()
	st := a.Stats()
	fmt.Println("repaired by the link, ACKs hidden:", st.LossRepairs > 0, st.LossRepairACKsHidden > 0)
	// Output:
	// intact: true
	// repaired by the link, ACKs hidden: true true
}
