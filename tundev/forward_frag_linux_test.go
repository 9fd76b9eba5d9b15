package tundev_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
)

// TestForwardTCPNeverFragments moves a TCP stream each way, IPv4 and IPv6,
// through a forwarding stack whose MTU (1280, IPv6's least) is far below
// the client's interface (9000): the MSS the stack offers is clamped to
// its own MTU and it sends nothing larger, so not one IP fragment is made
// or reassembled on either side (the kernel's counters in the client's
// namespace stay put), and the bytes arrive whole (SHA-256). This is why
// forwarded TCP needs no IPv6 fragments: a TCP sender cuts its stream to
// the MSS, which is what IPv6's no-fragmenting-routers rule needs anyway;
// UDP over fragments is TestForwardFragments.
func TestForwardTCPNeverFragments(t *testing.T) {
	leakCheck(t)
	e := newFwdEnvMTU(t, 1280, 9000, core.ForwardConfig{}, &listener.Forwarder{HandleTCP: func(_ context.Context, c *netconn.TCPConn) {
		io.Copy(c, c) // echo to the end, then half-close
		c.CloseWrite()
	}})
	size := 8 << 20
	if testing.Short() {
		size = 1 << 20
	}
	msg := make([]byte, size)
	rand.NewChaCha8([32]byte{12}).Read(msg)
	for _, far := range []netip.Addr{farHost, farHost6} {
		t.Run(far.String(), func(t *testing.T) {
			before := fragCounters(t, e)
			c, err := e.dial(context.Background(), "tcp", netip.AddrPortFrom(far, 80).String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			go func() { c.Write(msg); c.(*net.TCPConn).CloseWrite() }()
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err != nil || n != int64(len(msg)) || !bytes.Equal(h.Sum(nil), sha256Sum(msg)) {
				t.Fatalf("echoed %d bytes (%v), SHA-256 match %v; want %d matching", n, err, bytes.Equal(h.Sum(nil), sha256Sum(msg)), len(msg))
			}
			after := fragCounters(t, e)
			for k, v := range after {
				if v != before[k] {
					t.Errorf("%s went from %d to %d: IP fragments were made or reassembled", k, before[k], v)
				}
			}
		})
	}
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// fragCounters reads the kernel's fragmentation and reassembly counters
// in e's namespace (/proc/thread-self/net: the namespace of the reading
// thread).
func fragCounters(t *testing.T, e *fwdEnv) map[string]uint64 {
	t.Helper()
	out := make(map[string]uint64)
	err := e.ns.Do(func() error {
		snmp, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		lines := strings.Split(string(snmp), "\n")
		for i := 0; i+1 < len(lines); i++ {
			names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			if len(names) == 0 || names[0] != "Ip:" || len(values) != len(names) || values[0] != "Ip:" {
				continue
			}
			for j, name := range names {
				if strings.HasPrefix(name, "Frag") || strings.HasPrefix(name, "Reasm") {
					out["Ip"+name], _ = strconv.ParseUint(values[j], 10, 64)
				}
			}
			break
		}
		f, err := os.Open("/proc/thread-self/net/snmp6")
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) == 2 && (strings.HasPrefix(fs[0], "Ip6Frag") || strings.HasPrefix(fs[0], "Ip6Reasm")) {
				out[fs[0]], _ = strconv.ParseUint(fs[1], 10, 64)
			}
		}
		return sc.Err()
	})
	if err != nil || len(out) < 6 {
		t.Fatalf("fragment counters %v: %v", out, err)
	}
	return out
}
