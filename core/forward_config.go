package core

import (
	"net/netip"
	"time"
)

// ForwardConfig turns a stack into the stack behind a transparent proxy, a
// subnet router or a tun2socks: it takes TCP connections and UDP datagrams
// addressed to any IP in Prefixes, not only its own addresses, and answers
// from those addresses. Each flow goes to the one forwarder opened with
// ForwardOpen (the listener package's Forwarder serves it), which decides
// it and gets it as a socket whose local address is the flow's original
// destination. Every limit below has a default; past one a flow is
// refused and counted in Stats.Forward.
type ForwardConfig struct {
	// Prefixes are the destinations forwarded. Packets for other
	// destinations that are not the stack's own addresses are dropped and
	// counted (ForwardStats.OutsidePrefixes). Default: all of IPv4 and
	// IPv6.
	Prefixes []netip.Prefix

	// MaxPendingTCP bounds the TCP handshakes in progress at once: SYNs
	// waiting for a verdict or for the client's final ACK. Past it SYNs
	// are dropped and counted (ForwardStats.TCPPendingDrops), so a SYN
	// flood against any number of destinations holds at most this many;
	// the client retransmits its SYN. Default 1024.
	MaxPendingTCP int

	// MaxTCPFlows bounds the forwarded TCP connections open at once
	// (pending handshakes included). Past it a SYN is answered with a
	// reset and counted (ForwardStats.TCPLimitRefused). Default 4096.
	MaxTCPFlows int

	// MaxUDPFlows bounds the UDP flows (one per 5-tuple) open at once.
	// Past it a new flow's datagram is answered with ICMP port unreachable
	// and counted (ForwardStats.UDPLimitRefused). Default 4096.
	MaxUDPFlows int

	// UDPTimeout is how long a UDP flow may stay idle (no datagram either
	// way) before it expires; UDPAssuredTimeout is the same for a flow
	// that has carried datagrams both ways, as Linux conntrack has it. An
	// expired flow's socket is closed (a blocked read returns io.EOF) and
	// its state freed; the flow's next datagram starts a new one. Defaults
	// 30 s and 120 s. Expiry is checked every eighth of the shorter one,
	// so a flow lives up to that much longer.
	UDPTimeout, UDPAssuredTimeout time.Duration

	// FlowBuffer bounds the memory each forwarded flow may hold in the
	// stack: a TCP flow's send and receive buffers (each), a UDP flow's
	// receive buffer. Smaller windows slow a long fat path, never a local
	// one. Default 1 MiB.
	FlowBuffer int

	// AnswerEcho answers ICMP and ICMPv6 echo requests (ping) to every
	// address in Prefixes, which makes every host there look alive.
	// Default false: echo requests to addresses that are not the stack's
	// own are dropped and counted (ForwardStats.EchoDropped).
	AnswerEcho bool

	// ACKHold is how long the link holds back a pure TCP ACK that
	// acknowledges less than a full segment of new data (a request's), for
	// the connection's next segment (the reply) to carry: a 1-byte round
	// trip then costs one device write and one wake-up fewer. A held ACK
	// that nothing covers goes out when the time is up, so a peer that
	// waits for it (Nagle's algorithm) waits at most this long; duplicate
	// ACKs, window updates and ACKs with SACK blocks are never held, and
	// a second ACK sends the held one first (ACKs are delayed, never
	// thinned). It applies to every TCP connection of a forwarding stack
	// (see docs/architecture.md "Forwarding mode"). Default 0: 2 ms;
	// negative turns it off. Counted in ForwardStats.ACKsHeld and
	// ACKsCovered. Stacks joined by JoinPipe never hold.
	ACKHold time.Duration
}

const (
	defaultMaxPendingTCP     = 1024
	defaultMaxFlows          = 4096
	defaultUDPTimeout        = 30 * time.Second
	defaultUDPAssuredTimeout = 120 * time.Second
	defaultFlowBuffer        = 1 << 20
	defaultACKHold           = 2 * time.Millisecond
	minSweepPeriod           = 5 * time.Millisecond
)

var allPrefixes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// withDefaults returns c with every zero field set to its default.
func (c ForwardConfig) withDefaults() ForwardConfig {
	if len(c.Prefixes) == 0 {
		c.Prefixes = allPrefixes
	}
	setDefault(&c.MaxPendingTCP, defaultMaxPendingTCP)
	setDefault(&c.MaxTCPFlows, defaultMaxFlows)
	setDefault(&c.MaxUDPFlows, defaultMaxFlows)
	setDefault(&c.FlowBuffer, defaultFlowBuffer)
	if c.UDPTimeout <= 0 {
		c.UDPTimeout = defaultUDPTimeout
	}
	if c.UDPAssuredTimeout <= 0 {
		c.UDPAssuredTimeout = defaultUDPAssuredTimeout
	}
	if c.ACKHold == 0 {
		c.ACKHold = defaultACKHold
	}
	return c
}

// sweepPeriod is how often UDP flows are checked for expiry.
func (c ForwardConfig) sweepPeriod() time.Duration {
	return max(min(c.UDPTimeout, c.UDPAssuredTimeout)/8, minSweepPeriod)
}

// forwards reports whether a is in c's prefixes.
func (c ForwardConfig) forwards(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.Prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
