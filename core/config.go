package core

import (
	"fmt"
	"io"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// Medium is the kind of frames a device carries.
type Medium uint8

const (
	// MediumIP is raw IPv4 and IPv6 packets with no link header (a TUN
	// device, WireGuard).
	MediumIP Medium = iota
	// MediumEthernet is Ethernet II frames (a TAP device, a VM's NIC, a
	// Linux bridge): the stack has a MAC address (Config.MAC), resolves
	// neighbours with ARP (IPv4) and NDP (IPv6) and answers both for its
	// own addresses. See docs/guide.md, "Ethernet".
	MediumEthernet
)

// String returns "ip" or "ethernet".
func (m Medium) String() string {
	switch m {
	case MediumIP:
		return "ip"
	case MediumEthernet:
		return "ethernet"
	}
	return fmt.Sprintf("medium(%d)", uint8(m))
}

// Config configures a Netstack. Its zero value is a working default: no
// addresses but the loopback ones, MTU 1500, and the limits documented on
// each field. A Config is read once, by New; change addresses at run time
// with the SetStackAddrs command.
type Config struct {
	// Addrs are the stack's own addresses with their prefix lengths. Every
	// packet not for the stack itself leaves through the one device (a
	// default route for IPv4 and IPv6). Default: none.
	Addrs []netip.Prefix

	// MTU is the device's maximum transmission unit: the largest IP packet
	// it carries. Default 1500. On MediumEthernet frames are 14 bytes
	// longer (the Ethernet header; no FCS).
	MTU int

	// Medium is the device's medium: MediumIP (the default) or
	// MediumEthernet. A device attached to the stack (or polled with
	// PollDeviceIO) must carry the same (see LinkMediumDevice).
	Medium Medium

	// MAC is the stack's Ethernet address on MediumEthernet (unused on
	// MediumIP). Default: a random locally administered unicast address,
	// different for each stack. A group (multicast) address is refused
	// by New.
	MAC MAC

	// StaticNeighbors are neighbour entries New adds on MediumEthernet,
	// which ARP and NDP then never resolve nor replace (as "ip neigh add
	// ... nud permanent"). Default: none.
	StaticNeighbors []Neighbor

	// QueueLen is the length of the command queue. When it is full,
	// Channel.Request waits for room and Channel.RequestNonblocking fails
	// with ErrQueueFull. Default 256.
	QueueLen int

	// MaxNonblocking bounds the non-blocking requests the engine holds at
	// once: queued, or parked on a socket until it has buffer space (a
	// TCPSend to a peer that does not read). Past it RequestNonblocking
	// fails with ErrQueueFull and the command is not taken. Default
	// QueueLen.
	MaxNonblocking int

	// OutboundQueueLen bounds the packets waiting for the device to take
	// them. Past it packets are dropped and counted (Stats.OutboundDrops);
	// TCP retransmits. Default 4096.
	OutboundQueueLen int

	// TCPSendBuffer and TCPRecvBuffer are each TCP socket's default buffer
	// sizes in bytes: limits, not allocations (an idle connection holds
	// none of it). gVisor's receive auto-tuning may grow a buffer up to
	// 8 MiB, or to this size if larger. Default 4 MiB each, which keeps a
	// fast path's window open (at 1 MiB one stream through a virtual TUN
	// ran about 30% slower).
	TCPSendBuffer, TCPRecvBuffer int

	// UDPRecvBuffer is each UDP, ping and raw socket's receive buffer in
	// bytes. A UDP or ping socket's received datagrams are charged their
	// real memory cost, their bytes plus a fixed overhead of about a
	// hundred bytes (so a flood of empty datagrams is bounded too); those
	// arriving past it are dropped and counted (Stats.UDPQueueDrops, or
	// Stats.UDPRecvErrors for a burst that gVisor, which buffers datagrams
	// until the engine takes them, dropped first). Default 1 MiB.
	UDPRecvBuffer int

	// MaxSockets bounds the open sockets of all kinds; past it commands that
	// make a socket fail with ErrTooManySockets. Default 65536.
	MaxSockets int

	// MaxBacklog caps a listener's accept backlog. Default 1024.
	MaxBacklog int

	// DisableLoopback removes the loopback addresses 127.0.0.1/8 and ::1
	// the stack otherwise owns. Default: loopback on.
	DisableLoopback bool

	// SendLocalToDevice sends packets addressed to the stack's own
	// addresses out through the device instead of looping them back
	// inside the stack (smoltcp's behaviour). Default false.
	SendLocalToDevice bool

	// PCAP, if set, receives every packet the stack sends or receives on
	// its device, in pcap format: nanosecond timestamps from Clock, link
	// type RAW (IPv4 and IPv6), records in time order, each packet as the
	// stack saw it (TCP super-segments whole, up to 64 KiB; checksums
	// partial where the device offloads them). Records are buffered (64
	// KiB) and written from whichever goroutine moves the packet, one at a
	// time; the capture is complete when Close returns. After the first
	// write error the capture stops (see Netstack.PCAPError); the packets
	// keep flowing. The capture is this stack's alone: nothing process-wide
	// changes. Super-segments are kept whole, with no option to cut them:
	// that is what the stack handed its device, and on a joined pair or a
	// TUN with offloads what the link carries (tcpdump on a host with TSO
	// shows the same); cut to the MTU they would be packets, with IP IDs
	// and checksums, the stack never made. Default: no capture.
	PCAP io.Writer

	// TCPMinRTO and TCPMaxRTO bound TCP's retransmission timeout. Default
	// 200 ms (Linux's and gVisor's) and 120 s (gVisor's). A lower minimum
	// recovers faster on short paths with heavy loss (at 10% loss, 20-50 ms
	// gave 1.3-1.6x the goodput), but below a peer's delayed-ACK timer
	// (Linux's is up to 200 ms) it fires spuriously toward real hosts; a
	// lower maximum helps only at extreme loss; with the link's recovery
	// probes (see DisableRecoveryProbes) timeouts are rare even at 30%
	// loss, and 50 ms no longer paid there, while toward a Linux peer that
	// delays ACKs it drew 5 needless retransmissions in 40 request rounds
	// where 200 ms drew none. The inflated timeouts that
	// made a cap look useful came from RTT samples spanning a timeout,
	// which the link now removes (see DisableDSACK). TCP's congestion
	// control is gVisor's Reno: gVisor's CUBIC left slow start better on
	// a 10 ms path (HyStart) but can drop its window to zero and stall a
	// connection for good, and gVisor has nothing else. See
	// docs/gvisor-upstream.md.
	TCPMinRTO, TCPMaxRTO time.Duration

	// SingleACKs turns off the repeated ACK. By default the stack sends
	// every pure TCP ACK (no data, no SYN, FIN or RST) to its device twice,
	// back to back, so that one lost ACK does not stall a connection:
	// gVisor acknowledges a whole batch of segments with one ACK and sends
	// no tail-loss probe during loss recovery, so a lost ACK there cost a
	// retransmission timeout (200 ms or more). At 3% random loss this cut
	// the timeouts from 6-11 to 0-1 per 16 MiB and raised goodput 4-6x. The
	// copy is harmless where SACK is in use (an ACK without new SACK
	// information is not a duplicate ACK, RFC 6675) — every current stack
	// offers it — and costs one small packet per ACK. Stacks joined by
	// JoinPipe never repeat: nothing is lost between them. Nor does a
	// device with segmentation offload (a TUN opened with offloads): gVisor
	// marks every segment it sends there for GSO, ACKs included, and only
	// unmarked ACKs are repeated (whether to repeat there too is open: it
	// would add a device write per ACK to forwarded round trips). The
	// copies are counted in Stats.ACKsRepeated.
	SingleACKs bool

	// DisableDSACK turns off the duplicate-SACK reports (RFC 2883) the
	// stack's link adds for gVisor, whose receiver sends none. By default,
	// when a TCP segment arrives whose bytes the stack has already
	// acknowledged (a retransmission that was not needed, or a packet the
	// network duplicated), the connection's next pure ACK leaves with a
	// first SACK block naming those bytes (the ACK's own SACK blocks
	// follow, as many as fit: with timestamps two of gVisor's three). A
	// sender that reads DSACK, gVisor's and Linux's among them, learns that
	// its retransmission was not needed: RACK widens its reordering window,
	// and a tail-loss probe reported so costs no window cut. Only segments
	// below the acknowledged edge are reported, never one that fails its
	// checksums, so a report is never wrong. The reports are counted in
	// Stats.DSACKsSent (and a gVisor peer's received ones in its
	// Stats.TCPDSACKedSegments). On the lossy benchmark's reordering cell
	// (5% of packets held back 1 ms, a path of well under a millisecond)
	// they did not raise goodput: gVisor caps the window at its smoothed
	// RTT, which it keeps at 1 ms or more, and a packet held back 1 ms
	// still counts as lost (see docs/gvisor-upstream.md). Stacks joined by
	// JoinPipe never send them; on a device with receive offloads (GRO)
	// the segments it coalesces are checked, those it hands over as
	// validated (ValidatedReader) are not.
	//
	// The same ACK also echoes the duplicate's timestamp where gVisor's
	// echo is older (RFC 7323 §4.3; counted in Stats.ACKEchoesFixed), which
	// this option does not turn off: after a timeout whose ACK was lost, the
	// sender then samples the retransmission's round trip, not the whole
	// timeout.
	DisableDSACK bool

	// DisableRecoveryProbes turns off the link's recovery probes. By
	// default, while a TCP connection the stack sends on is in loss
	// recovery (its peer reported a gap with SACK blocks, or the stack
	// sent its lowest unacknowledged segment again, and not all it had
	// sent by then is acknowledged) and nothing new is acknowledged for
	// twice the link's RTT of the connection (at least 2 ms), the link
	// sends the lowest unacknowledged segment once more itself (with the
	// stack's newest acknowledgement, window and timestamps), and each
	// other hole the peer's SACK blocks show (up to 16), doubling the
	// wait for each further probe of the same stall, up to six. Outside
	// recovery, or after those six, a connection whose data or FIN stays
	// unacknowledged with no progress gets the same probe (a stall probe,
	// Stats.StallProbes) after four of the link's RTTs, at least 20 ms,
	// while two segments or more are outstanding (no delayed ACK holds
	// back two), else after 1 s, the wait doubling up to 64 times, ten at
	// most: it does the work of a lost tail-loss probe before gVisor's
	// 200 ms timeout, which cuts the window to one segment (at 30% loss,
	// 0-5 timeouts over 20 seeds of 1 MiB instead of 8-12), and gVisor
	// can be left with a FIN or data outstanding and no timer armed,
	// which stalled about one in three hundred 1 MiB transfers at 30%
	// loss for good (docs/gvisor-upstream.md §1). At 30%
	// loss this took the lossy benchmark's median time to deliver 1 MiB
	// from 6.96 s to 1.2-1.4 s (docs/benchmarks.md). gVisor arms
	// no tail-loss probe in recovery, so a lost retransmission, or a lost
	// ACK of one, otherwise waits for the retransmission timeout (200 ms
	// or more), which also drops the window to one segment. The link keeps
	// a reference to each data segment until it is acknowledged (at most
	// 1024 per connection, 8192 per stack). Probes are counted in
	// Stats.RecoveryProbes. Stacks joined by JoinPipe never send them; a
	// TCP super-segment (toward a device that takes them, GSODevice) is
	// never kept, so there only segments sent wire-sized, retransmissions
	// among them, are probed.
	DisableRecoveryProbes bool

	// SACKHold, if positive, is how long the link holds back a pure TCP
	// ACK that reports a gap (a SACK block above its acknowledgement), in
	// case the gap fills: a packet merely reordered then draws no SACK,
	// and gVisor's sender, whose reordering window stays at about 1 ms or
	// less, does not take it for lost. If the gap fills in time the
	// stack's next ACK covers it and the held one is dropped; if not, the
	// newest held ACK goes out when the time is up, and the sender learns
	// of a real loss that much later. An ACK with a DSACK report is never
	// held. Default 0: no hold. Measured on the lossy benchmark's path (5%
	// of packets held back 1 ms, no loss, a netcore sender): a 2 ms hold
	// cut the sender's retransmissions eightfold (7,900 to 930 in 9 s) but
	// not its goodput (0.17-0.19 Gbit/s against 0.19-0.20): while an ACK
	// is held its sender gets no ACK clock, and at 5% reordering some gap
	// is open most of the time; ReorderHold, which holds the segments
	// instead, does what this was meant to. It may suit a path whose
	// reordering is rarer, or where retransmissions cost. Counted in
	// Stats.ACKsHeld.
	// Stacks joined by JoinPipe never hold.
	SACKHold time.Duration

	// WindowControl turns on the link's window control (opt-in): for each
	// TCP connection the stack sends on, the link measures the path as
	// BBR does (the delivery rate of the ACKs, its maximum over ten round
	// trips, and the minimum round trip over 10 s, from its own send and
	// ACK times) and lowers the window of the ACKs it hands gVisor to
	// twice that bandwidth-delay product (taking a round trip of at least
	// 2 ms, and at least 10 segments; never below what is in flight, never
	// above the peer's window). gVisor's Reno
	// then sends no more than the smaller of its window and the link's, so
	// this can only hold it back: it stops Reno's slow start from
	// overfilling a bottleneck's queue (5 ms each way at 500 Mbit/s with a
	// 1000-packet queue: hundreds of segments lost in one flight, a
	// timeout, then growth by one segment per round trip). Every 10 s
	// the link drains the path for 200 ms (four segments in flight) to
	// measure its round trip anew, as BBR's ProbeRTT. Counted in
	// Stats.WindowsLowered. It needs the connection's SYNs seen by the link
	// and ACKs whose checksums it can check. Stacks joined by JoinPipe
	// never use it. Off by default: on the lossy benchmark it lifted the
	// unimpaired 5 ms cell 2-3x (no queue drops) and left the others within
	// the noise, but it has been measured only between netcore stacks on
	// that one benchmark; see docs/benchmarks.md ("Window control and loss
	// repair").
	WindowControl bool

	// LossRepair turns on the link's loss repair (opt-in, experimental;
	// it implies WindowControl, whose window then is gVisor's only limit;
	// it acts on every connection, short paths included: without delay a
	// random loss that reaches gVisor halves its window too, and on the
	// lossy benchmark's no-delay cells gVisor then retransmitted thousands
	// of segments per cell against tens with the repair):
	// the link keeps a reference to each wire-sized TCP data segment the
	// stack sends (up to 4 MiB of payload per connection, shared with
	// gVisor's send buffer, which holds it until acknowledged anyway) and
	// a SACK scoreboard of its own; a segment a later one overtook (RACK,
	// RFC 8985, with a reordering window of at least 1 ms) it sends again
	// itself, and it hands gVisor the ACK without its SACK blocks above the
	// cumulative acknowledgement, so that gVisor's Reno does not cut its
	// window for a random loss the link repairs. A loss the link cannot
	// repair (a segment not kept, or repaired eight times) or congestion
	// reaches gVisor, which recovers it and cuts its window as without
	// LossRepair; gVisor's retransmission timeout stays the fallback, and
	// the link never acknowledges anything for the peer. Congestion is told
	// from random loss by a test, not by the loss share (the link's window
	// keeps twice the path in flight, so the round trip doubles at any
	// bottleneck and tells nothing either): once the path's bandwidth
	// stopped growing and the repairs pass 3% of the segments, the link
	// lowers its window to the path's bandwidth-delay product for enough
	// segments to expect 40 losses (at most 16 round trips' worth); if the
	// share there falls below half, the losses were a queue's overflow and
	// pass to gVisor for a second, else they are random and stay hidden,
	// whatever their share, until the next test 1-4 s later. So a 10-packet
	// queue on a 5 Mbit/s, 20 ms path, which the window overfills by 13-18%
	// of the segments, reaches gVisor (the rule before, hiding any share
	// under 15%, hid it all), and 20% random loss each way does not. The
	// handshake's round trip is the link's first sample (from the SYN copy
	// the answer's timestamp echoes, when the SYN was sent again), so a
	// loss in the first flight is repaired too (one that reached gVisor
	// ended its slow start at a few segments for good). To spare
	// gVisor's sender, whose loss detection walks all it has in flight on
	// every ACK, the link hands it no copy of the ACK before it (the peer's
	// link repeats each, see SingleACKs) and, while a hole is open, an ACK
	// only once its window edge has moved four segments. ACKs that carry
	// data are not changed. Counted in
	// Stats.LossRepairs, LossRepairACKsHidden and LossRepairPassed. Stacks
	// joined by JoinPipe never use it. Off by default: on the lossy
	// benchmark, on a quiet 2-core machine, it lifts the cells with 1-10%
	// loss and 5 ms each way from 0.01-0.03x Linux's BBR to 0.62-0.78x
	// (0.93x without loss), still below it; without delay gVisor then
	// retransmits tens of segments per cell instead of hundreds to
	// thousands, and at 5-10% loss the pair spends a fifth to two fifths
	// less CPU per MB than gVisor's own recovery (a little more at 1%).
	// The congestion test has been measured only on a loaded machine
	// (load 16-18 on 2 cores, where netcore's cells are CPU-bound and move
	// 2-3x between runs); see docs/benchmarks.md ("Window control and loss
	// repair").
	LossRepair bool

	// ReorderHold bounds the link's reorder hold: how long a TCP segment
	// that arrives above the next sequence number expected on its
	// connection (a packet before it is missing) may be kept back, in
	// case the missing one was merely overtaken, before the stack sees
	// it. The hold is adaptive, per connection: it stays off until the
	// link has seen reordering a few times (a gap that filled late: the
	// same bytes arriving twice, one copy sent before the segment that
	// showed the gap, by its timestamp), and then holds a gap for 5/4 of
	// the longest such delay of the last 1-2 s plus 250 µs, at most
	// ReorderHold; it goes off again while more gaps ran out than there
	// was evidence (real losses, each delayed by the hold). While a gap
	// is held, what arrives above it is kept and goes in, in order, once
	// it fills, so gVisor sees no reordering,
	// sends no SACK for it, and its sender neither retransmits nor cuts
	// its window, and the ACK clock goes on (unlike SACKHold's). gVisor's
	// own reordering window is tied to an RTT its millisecond timestamps
	// keep at 1 ms or more, so without the hold a packet held back 1 ms
	// counts as lost (docs/gvisor-upstream.md §3). At most 512 segments
	// are kept per connection and 4096 per stack. Default 0: 8 ms (see
	// docs/benchmarks.md); negative turns the hold off. Counted in
	// Stats.ReorderHeld, ReorderFilled and ReorderExpired. Stacks joined
	// by JoinPipe never hold, nor does a device with receive offloads
	// (OffloadDevice) for the segments it coalesces.
	ReorderHold time.Duration

	// SYNRetry is how long the link waits for the answer to its stack's
	// TCP SYN before it sends a copy of that SYN itself, and then between
	// copies, up to three after each SYN the stack sends; gVisor's own
	// timer (1 s, then doubling, as RFC 6298 and Linux) goes on beneath.
	// The copies carry a fresh timestamp, so the first RTT sample is the
	// answered copy's round trip. A listening stack's link answers a
	// SYN resent on a connection its stack already answered with a copy
	// of its SYN-ACK (gVisor's listener answers it with a bare ACK, which
	// the connecting side ignores, and resends its SYN-ACK only on its own
	// 1 s timer): one per SYN received, at most four per connection, so
	// it never answers more SYNs than arrive. This is more aggressive
	// than RFC 6298's 1 s initial timeout, on purpose: at 30% loss each
	// way half of all handshakes lose their SYN or SYN-ACK, and on
	// gVisor's timers alone waited 1, 3, 7 or 15 s (docs/benchmarks.md).
	// It costs at most three small packets per second of a handshake that
	// gets no answer. Default 0: 250 ms; negative turns both off.
	// Counted in Stats.SYNsResent and SYNACKsReplayed. Stacks joined by
	// JoinPipe never retry.
	SYNRetry time.Duration

	// Forward, if set, turns on forwarding mode: the stack takes TCP and
	// UDP flows addressed to any IP of its prefixes and hands each to the
	// forwarder (see ForwardConfig and ForwardOpen). Default nil: the
	// stack answers for its own addresses only. Forwarding mode implies
	// SendLocalToDevice (gVisor, promiscuous, would otherwise take every
	// packet's source for one of its own and drop it).
	Forward *ForwardConfig

	// Clock is gVisor's clock, for deterministic tests. Default: the real
	// clock (tcpip.NewStdClock).
	Clock tcpip.Clock

	// Logf, if set, receives the stack's log lines, one call per line
	// without a trailing newline: netcore's own, prefixed "netcore: " (a
	// device that failed while the stack runs), and gVisor's, prefixed
	// "gvisor: " ("Martian packet dropped…", "handleListenSegment()
	// failed…" during a SYN flood). log.Printf fits. Default nil: the
	// stack logs nothing, and nothing of netcore's or gVisor's goes to
	// stderr.
	//
	// gVisor's logger is process-wide and its lines name no stack, so each
	// of them goes to the Logf of every open stack that has one (a line
	// of another stack's gVisor included); stacks without Logf get none.
	// gVisor filters by its own process-wide level (Info: its Debug lines
	// never come). A program that replaces gVisor's logger itself
	// (gVisor's log.SetTarget) gets gVisor's lines there instead, and Logf
	// then only those of netcore and of gVisor's rate-limited loggers
	// (the Martian one). Logf is called from any goroutine, gVisor's
	// included while it holds its locks: it must be safe for concurrent
	// use, return quickly and never call into the stack.
	Logf func(format string, args ...any)
}

const (
	defaultMTU         = 1500
	defaultQueueLen    = 256
	defaultOutboundLen = 4096
	defaultTCPBuffer   = 4 << 20
	defaultUDPBuffer   = 1 << 20
	defaultMaxSockets  = 65536
	defaultMaxBacklog  = 1024
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	setDefault(&c.MTU, defaultMTU)
	setDefault(&c.QueueLen, defaultQueueLen)
	setDefault(&c.MaxNonblocking, c.QueueLen)
	setDefault(&c.OutboundQueueLen, defaultOutboundLen)
	setDefault(&c.TCPSendBuffer, defaultTCPBuffer)
	setDefault(&c.TCPRecvBuffer, defaultTCPBuffer)
	setDefault(&c.UDPRecvBuffer, defaultUDPBuffer)
	setDefault(&c.MaxSockets, defaultMaxSockets)
	setDefault(&c.MaxBacklog, defaultMaxBacklog)
	if c.Clock == nil {
		c.Clock = tcpip.NewStdClock()
	}
	if c.Medium == MediumEthernet && c.MAC.IsZero() {
		c.MAC = randomMAC()
	}
	return c
}

func setDefault(v *int, def int) {
	if *v <= 0 {
		*v = def
	}
}
