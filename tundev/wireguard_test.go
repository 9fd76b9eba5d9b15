package tundev_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/dialer"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/tundev"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/net/nettest"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
)

// Tunnel addresses: they exist only inside the two userspace stacks.
var (
	wgAddrA = netip.MustParseAddr("192.0.2.1")
	wgAddrB = netip.MustParseAddr("192.0.2.2")
)

// wgNode is a netcore stack behind a Virtual driven by a wireguard-go
// device listening on a 127.0.0.1 UDP port.
type wgNode struct {
	stack *core.Netstack
	ch    core.Channel
	v     *tundev.Virtual
	dev   *device.Device
	addr  netip.Addr
	priv  [32]byte
	pub   [32]byte
	port  int
}

func newKey(tb testing.TB) (priv, pub [32]byte) {
	rand.Read(priv[:])
	priv[0] &= 248
	priv[31] = priv[31]&127 | 64
	p, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		tb.Fatal(err)
	}
	return priv, [32]byte(p)
}

// newWGNode starts a stack at addr with a Virtual and a wireguard-go device
// on it; both are closed when tb ends, the device first.
func newWGNode(tb testing.TB, addr netip.Addr, mtu int) *wgNode {
	tb.Helper()
	return newWGNodeConfig(tb, addr, core.Config{MTU: mtu, Addrs: []netip.Prefix{netip.PrefixFrom(addr, 24)}})
}

// newWGNodeConfig is newWGNode with the stack's whole Config.
func newWGNodeConfig(tb testing.TB, addr netip.Addr, cfg core.Config) *wgNode {
	tb.Helper()
	mtu := cfg.MTU
	n := &wgNode{addr: addr}
	n.priv, n.pub = newKey(tb)
	n.stack = testnet.Start(tb, cfg)
	n.ch = n.stack.CommandChannel()
	n.v = tundev.NewVirtual(tundev.VirtualConfig{MTU: mtu})
	if err := n.stack.AttachDevice(n.v); err != nil {
		tb.Fatalf("AttachDevice: %v", err)
	}
	n.dev = device.NewDevice(n.v, conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
	tb.Cleanup(n.dev.Close)
	if err := n.dev.IpcSet("private_key=" + hex.EncodeToString(n.priv[:]) + "\nlisten_port=0\n"); err != nil {
		tb.Fatalf("IpcSet: %v", err)
	}
	if err := n.dev.Up(); err != nil {
		tb.Fatalf("Up: %v", err)
	}
	n.port = listenPort(tb, n.dev)
	return n
}

func listenPort(tb testing.TB, dev *device.Device) int {
	conf, err := dev.IpcGet()
	if err != nil {
		tb.Fatalf("IpcGet: %v", err)
	}
	for line := range strings.Lines(conf) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "listen_port="); ok {
			p, _ := strconv.Atoi(v)
			return p
		}
	}
	tb.Fatal("no listen_port")
	return 0
}

// peer makes n and m peers of each other.
func (n *wgNode) peer(tb testing.TB, m *wgNode) {
	tb.Helper()
	conf := fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\nallowed_ip=%s/32\npersistent_keepalive_interval=0\n",
		hex.EncodeToString(m.pub[:]), m.port, m.addr)
	if err := n.dev.IpcSet(conf); err != nil {
		tb.Fatalf("IpcSet peer: %v", err)
	}
}

// newWGPair returns two nodes peered over 127.0.0.1.
func newWGPair(tb testing.TB, mtu int) (a, b *wgNode) {
	a, b = newWGNode(tb, wgAddrA, mtu), newWGNode(tb, wgAddrB, mtu)
	a.peer(tb, b)
	b.peer(tb, a)
	return a, b
}

func wgBulk() int64 {
	if testing.Short() {
		return 8 << 20
	}
	return 64 << 20
}

func TestWireGuardHTTP(t *testing.T) {
	leakCheck(t)
	a, b := newWGPair(t, 1420)
	size := wgBulk()
	want := sha256.New()
	io.CopyN(want, newPRNG(7), size)

	ln := listenStack(t, a.ch, netip.AddrPortFrom(a.addr, 80))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		io.CopyBuffer(w, io.LimitReader(newPRNG(7), size), make([]byte, 256<<10))
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-served }()

	d := &dialer.Dialer{Channel: b.ch}
	tr := &http.Transport{DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	resp, err := client.Get("http://" + netip.AddrPortFrom(a.addr, 80).String() + "/big")
	if err != nil {
		t.Fatalf("GET through the tunnel: %v", err)
	}
	defer resp.Body.Close()
	got := sha256.New()
	start := time.Now()
	n, err := io.CopyBuffer(got, resp.Body, make([]byte, 256<<10))
	if err != nil || n != size {
		t.Fatalf("body: %d bytes, %v; want %d", n, err, size)
	}
	if string(got.Sum(nil)) != string(want.Sum(nil)) {
		t.Fatalf("body SHA-256 %x, want %x", got.Sum(nil), want.Sum(nil))
	}
	t.Logf("%d MiB through WireGuard in %v", size>>20, time.Since(start).Round(time.Millisecond))
}

func TestWireGuardNettest(t *testing.T) {
	leakCheck(t)
	a, b := newWGPair(t, 1420)
	ln := listenStack(t, a.ch, netip.AddrPortFrom(a.addr, 7000))
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		acc := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			acc <- c
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c1, err = dialStack(ctx, b.ch, netip.AddrPortFrom(a.addr, 7000))
		if err != nil {
			return nil, nil, nil, err
		}
		c2 = <-acc
		if c2 == nil {
			c1.Close()
			return nil, nil, nil, fmt.Errorf("accept failed")
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

// TestWireGuardCloseWhileBusy closes one part of a tunnel (either
// wireguard-go device, either stack, either Virtual) while TCP traffic
// flows through it, then the rest: nothing may panic or race, and no
// goroutine may be left.
func TestWireGuardCloseWhileBusy(t *testing.T) {
	leakCheck(t)
	rounds := 100
	if testing.Short() {
		rounds = 10
	}
	for i := range rounds {
		closeWhileBusy(t, i)
	}
}

func closeWhileBusy(t *testing.T, round int) {
	t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
		a, b := newWGPair(t, 1420)
		victims := []func(){
			a.dev.Close, b.dev.Close,
			func() { a.stack.Close() }, func() { b.stack.Close() },
			func() { a.v.Close() }, func() { b.v.Close() },
		}
		ln := listenStack(t, a.ch, netip.AddrPortFrom(a.addr, 7000))
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := ln.Accept(); err == nil {
				io.Copy(c, c)
				c.Close()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := dialStack(ctx, b.ch, netip.AddrPortFrom(a.addr, 7000))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		wg.Add(2)
		go func() { defer wg.Done(); io.Copy(c, io.LimitReader(newPRNG(1), 1<<30)) }()
		go func() { defer wg.Done(); io.Copy(io.Discard, c) }()
		time.Sleep(time.Duration(round%7) * 3 * time.Millisecond)
		victims[round%len(victims)]()
		// The rest is closed by the cleanups: devices, then stacks, which
		// wake every blocked conn call.
		time.AfterFunc(50*time.Millisecond, func() { a.stack.Close(); b.stack.Close() })
	})
}
