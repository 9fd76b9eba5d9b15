package impair_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/core/impair"
	"github.com/netcore-go/netcore/dialer"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
)

// A Link on raw packets: which ones a seed loses and duplicates is the
// same on every run.
func ExampleLink() {
	var got []string
	l, err := impair.New(impair.Config{Seed: 1, Loss: 0.3, Duplicate: 0.2}, func(pkts [][]byte) {
		for _, p := range pkts {
			got = append(got, string(p))
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	for _, p := range strings.Fields("a b c d e f g h i j") {
		l.Send([]byte(p))
	}
	l.Drain(context.Background()) // wait until every packet is delivered or dropped
	s := l.Stats()
	fmt.Println(got)
	fmt.Printf("sent %d, lost %d, duplicated %d, delivered %d\n", s.Sent, s.Lost, s.Duplicated, s.Delivered)
	// Output:
	// [a b c c d h j]
	// sent 10, lost 4, duplicated 1, delivered 7
}

// Two stacks joined through a lossy, corrupting link: TCP delivers every
// byte intact.
func ExampleJoin() {
	a := mustStack("192.0.2.1/24")
	b := mustStack("192.0.2.2/24")
	go a.Run(context.Background())
	go b.Run(context.Background())
	defer a.Close()
	defer b.Close()
	bad := impair.Config{Loss: 0.05, Reorder: 0.05, Duplicate: 0.02, Corrupt: 0.01}
	ab, ba := bad, bad
	ab.Seed, ba.Seed = 1, 2
	abLink, _, err := impair.Join(a, b, ab, ba)
	if err != nil {
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
	s := abLink.Stats()
	fmt.Println("lost, corrupted, reordered, duplicated:", s.Lost > 0, s.Corrupted > 0, s.Reordered > 0, s.Duplicated > 0)
	// Output:
	// intact: true
	// lost, corrupted, reordered, duplicated: true true true true
}

func mustStack(prefix string) *core.Netstack {
	ns, err := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix(prefix)}})
	if err != nil {
		log.Fatal(err)
	}
	return ns
}

// Two stacks joined through a bad network, an HTTP fetch across it: a
// 1 MiB body arrives whole though packets were lost both ways.
func ExampleJoin_http() {
	a, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	b, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	go a.Run(context.Background())
	go b.Run(context.Background())
	defer a.Close()
	defer b.Close()

	// A's packets to B: 5% lost, 5% held back 1 ms (later ones overtake
	// them), 2% sent twice, 1% with a flipped bit; B's to A: 5% lost.
	// The seeds make every run decide the same.
	ab := impair.Config{Seed: 1, Loss: 0.05, Reorder: 0.05, Duplicate: 0.02, Corrupt: 0.01}
	ba := impair.Config{Seed: 2, Loss: 0.05}
	abLink, baLink, err := impair.Join(a, b, ab, ba) // instead of core.JoinPipe
	if err != nil {
		log.Fatal(err)
	}

	// The app as usual: an HTTP server on B, a client on A.
	ln, _ := listener.Listen(b.CommandChannel(), "tcp", "192.0.2.2:80")
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), 1<<20))
	}))
	d := &dialer.Dialer{Channel: a.CommandChannel()}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	resp, err := client.Get("http://192.0.2.2/")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(len(body), abLink.Stats().Lost > 0, baLink.Stats().Lost > 0)
	// Output: 1048576 true true
}

// Wrap puts a far, slow link around any device: delay, jitter, a rate
// limit and bursty loss, each way. It compiles, and runs only by hand.
func ExampleWrap() {
	stack, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.3/24")}})
	defer stack.Close()
	go stack.Run(context.Background())

	// 40 ms each way, ± 5 ms, 10 Mbit/s behind a 100-packet queue, and
	// loss in bursts (Gilbert–Elliott: 1% of packets start a bad spell,
	// 4 packets long on average, that loses half of them).
	far := impair.Config{
		Delay: 40 * time.Millisecond, Jitter: 5 * time.Millisecond,
		Rate: 10_000_000, QueueLimit: 100,
		Burst: impair.GilbertElliott{PGoodBad: 0.01, PBadGood: 0.25, LossBad: 0.5},
	}
	// Wrap impairs any device (a TUN, a virtual TUN, a pipe's end): out is
	// what the stack sends, in what it receives.
	pipe := core.NewPipe(0)
	dev, err := impair.Wrap(&core.PipeDev{End: pipe.A, MTU: stack.MTU()}, far, far)
	if err != nil {
		log.Fatal(err)
	}
	if err := stack.AttachDevice(dev); err != nil {
		log.Fatal(err)
	}
	// ... the other end, pipe.B, goes to another stack or a relay ...
	fmt.Printf("out %+v\nin %+v\n", dev.Out().Stats(), dev.In().Stats())
}
