//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/netcore-go/netcore/core/impair"
	"github.com/netcore-go/netcore/internal/netns"
	"github.com/netcore-go/netcore/tundev"
	"golang.org/x/sys/unix"
)

// linuxPath is the kernel's TCP between two network namespaces of the
// benchmark's own, each with a TUN device (offloads off: wire-sized,
// fully checksummed packets), joined by a relay in this process that
// passes each direction's packets through an impair Link.
func linuxPath() lossyPath {
	return lossyPath{
		name:        "linux",
		about:       "the kernel's TCP between two network namespaces, TUN devices (offloads off, MTU 1500) joined by a relay through impair Links",
		unavailable: linuxUnavailable,
		start:       startLinuxImpaired,
	}
}

// linuxUnavailable says why the Linux path cannot run here, or "".
func linuxUnavailable() string {
	if os.Geteuid() != 0 {
		return "needs root (CAP_NET_ADMIN) for network namespaces and TUN devices"
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Sprintf("no /dev/net/tun: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		return fmt.Sprintf("cannot make a network namespace: %v", err)
	}
	ns.Close()
	return ""
}

// relay is a running Linux path: two namespaces, their TUN devices and
// one reader goroutine per device feeding its link.
type relay struct {
	ns     [2]*netns.NS
	tuns   [2]*tundev.TUN
	links  [2]*impair.Link // links[i] carries what tuns[i] reads to the other device
	wg     sync.WaitGroup  // the readers
	maxPkt atomic.Int64    // the largest packet relayed
}

// startLinuxImpaired makes the namespaces and devices and starts the
// relay; ab impairs what the client (namespace 0, addrA) sends.
func startLinuxImpaired(o lossyOptions, ab, ba impair.Config) (_ *lossyEnv, err error) {
	r := &relay{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	addrs := [2]netip.Addr{addrA, addrB}
	for i := range r.ns {
		if r.ns[i], err = netns.New(); err != nil {
			return nil, err
		}
		if err = r.ns[i].Do(func() error { return r.openTUN(i, addrs[i]) }); err != nil {
			return nil, err
		}
	}
	if r.links[0], err = impair.New(ab, r.writer(1)); err != nil {
		return nil, err
	}
	if r.links[1], err = impair.New(ba, r.writer(0)); err != nil {
		return nil, err
	}
	for i := range r.tuns {
		r.wg.Go(func() { r.read(i) })
	}
	return r.env(o.linuxCC), nil
}

// openTUN sets up the calling namespace (prepareNS) and opens device i
// in it, up, with addr.
func (r *relay) openTUN(i int, addr netip.Addr) error {
	if err := prepareNS(); err != nil {
		return err
	}
	t, err := tundev.Open(tundev.Config{
		Name: fmt.Sprintf("nbtun%d", i), MTU: lossyMTU, DisableOffloads: true,
		Addrs: []netip.Prefix{netip.PrefixFrom(addr, 24)},
	})
	if err != nil {
		return err
	}
	r.tuns[i] = t
	return nil
}

// prepareNS sets up the calling thread's namespace before its device is
// made: IPv6 off, as its router solicitations and multicast reports would
// go through the links and shift their random decisions away from those
// the netcore path's packets get (a kernel without IPv6 has nothing to
// turn off). Under /proc/sys/net a thread sees its own namespace.
func prepareNS() error {
	for _, conf := range []string{"all", "default"} {
		err := os.WriteFile("/proc/sys/net/ipv6/conf/"+conf+"/disable_ipv6", []byte("1"), 0)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disable IPv6: %w", err)
		}
	}
	return nil
}

// withCC is a socket Control function that sets the congestion control
// cc, or nil for "" (the namespace's default). It is set per socket: a
// namespace other than the first may only default to the kernel's
// allowed ones (tcp_allowed_congestion_control), a CAP_NET_ADMIN socket
// to any available one.
func withCC(cc string) func(network, address string, c syscall.RawConn) error {
	if cc == "" {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, cc)
		}); cerr != nil {
			return cerr
		}
		if err != nil {
			return fmt.Errorf("congestion control %q: %w", cc, err)
		}
		return nil
	}
}

// writer is the delivery function of the link toward device i.
func (r *relay) writer(i int) func([][]byte) {
	return func(pkts [][]byte) { r.tuns[i].WritePackets(pkts) } // a closed device drops them
}

// read feeds what device i reads into its link, until either closes.
func (r *relay) read(i int) {
	t, l := r.tuns[i], r.links[i]
	bufs, sizes := [][]byte{make([]byte, 1<<16)}, []int{0}
	pkts := make([][]byte, 1)
	for {
		n, err := t.ReadPackets(bufs, sizes)
		if err != nil {
			return
		}
		for j := range n {
			pkts[j] = bufs[j][:sizes[j]]
			r.noteSize(sizes[j])
		}
		if l.SendBatch(pkts[:n]) != nil {
			return
		}
	}
}

func (r *relay) noteSize(n int) {
	for m := r.maxPkt.Load(); int64(n) > m && !r.maxPkt.CompareAndSwap(m, int64(n)); m = r.maxPkt.Load() {
	}
}

// close stops the links, then the devices (which wakes the readers),
// waits for the readers and ends the namespaces' threads. Whatever
// startLinuxImpaired made is closed, also after a failed start.
func (r *relay) close() {
	for _, l := range r.links {
		if l != nil {
			l.Close()
		}
	}
	for _, t := range r.tuns {
		if t != nil {
			t.Close()
		}
	}
	r.wg.Wait()
	for _, ns := range r.ns {
		if ns != nil {
			ns.Close()
		}
	}
}

// env is the path's lossyEnv: the server listens in namespace 1, the
// client dials from namespace 0, with the congestion control cc ("": the
// default); the sockets keep their namespace.
func (r *relay) env(cc string) *lossyEnv {
	return &lossyEnv{
		listen: func() (ln net.Listener, err error) {
			err = r.ns[1].Do(func() error {
				lc := net.ListenConfig{Control: withCC(cc)}
				ln, err = lc.Listen(context.Background(), "tcp4", net.JoinHostPort(addrB.String(), "0"))
				return err
			})
			return ln, err
		},
		dial: func(ctx context.Context, to netip.AddrPort) (c net.Conn, err error) {
			err = r.ns[0].Do(func() error {
				d := net.Dialer{Control: withCC(cc)}
				c, err = d.DialContext(ctx, "tcp4", to.String())
				return err
			})
			return c, err
		},
		ab: r.links[0], ba: r.links[1],
		close:       r.close,
		maxPacket:   func() int { return int(r.maxPkt.Load()) },
		retransmits: r.retransmits,
	}
}

// retransmits sums both namespaces' TCP RetransSegs counters.
func (r *relay) retransmits() uint64 {
	var sum uint64
	for _, ns := range r.ns {
		ns.Do(func() error {
			n, err := retransSegs()
			sum += n
			return err
		})
	}
	return sum
}

// retransSegs reads the calling thread's namespace's TCP RetransSegs
// from /proc/thread-self/net/snmp (/proc/self/net is the main thread's).
func retransSegs() (uint64, error) {
	b, err := os.ReadFile("/proc/thread-self/net/snmp")
	if err != nil {
		return 0, err
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		for i, v := range fields {
			if i < len(names) && names[i] == "RetransSegs" {
				return strconv.ParseUint(v, 10, 64)
			}
		}
	}
	return 0, errors.New("no Tcp RetransSegs in /proc/net/snmp")
}

// linuxTCPSettings reads the TCP settings of a namespace set up as the
// path's are, for the report: congestion control, SACK, timestamps, RACK.
// It fails if the congestion control o asks for cannot be had.
func linuxTCPSettings(o lossyOptions) (string, error) {
	ns, err := netns.New()
	if err != nil {
		return "", err
	}
	defer ns.Close()
	var parts []string
	err = ns.Do(func() error {
		if err := prepareNS(); err != nil {
			return err
		}
		for _, k := range []string{"tcp_congestion_control", "tcp_sack", "tcp_timestamps", "tcp_recovery"} {
			if b, err := os.ReadFile("/proc/sys/net/ipv4/" + k); err == nil {
				parts = append(parts, k+"="+strings.TrimSpace(string(b)))
			}
		}
		if o.linuxCC == "" {
			return nil
		}
		parts = append(parts, "sockets set to "+o.linuxCC)
		lc := net.ListenConfig{Control: withCC(o.linuxCC)}
		ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		if err == nil {
			ln.Close()
		}
		return err
	})
	return strings.Join(parts, " "), err
}
