package core

import "net/netip"

// ForwardOpen opens the stack's forwarder: from now on the flows that
// Config.Forward lets in are offered on it, to ForwardAccept. A stack has
// at most one open at a time; without Config.Forward, or with one open
// already, it fails with ErrInvalid. Closing it (CloseSocket) refuses
// every flow not yet accepted with a reset, and new flows are refused
// until the next ForwardOpen. Handle: NoHandle. Answers ForwardOpened.
type ForwardOpen struct {
	// AcceptTCP accepts every TCP flow without asking: it is offered only
	// once its handshake is over, with its Handle (saving a ForwardVerdict
	// round trip per connection); the handshake starts as the SYN comes,
	// without waiting for the engine.
	AcceptTCP bool
	// HandleTCP, with AcceptTCP, takes every TCP flow once its handshake
	// is over, instead of ForwardAccept: it is called with the flow (its
	// Handle, a TCP socket that is HandleTCP's to close) on the goroutine
	// that completed the handshake, which is then the flow's for as long
	// as HandleTCP runs: one goroutine hand-off and one goroutine fewer per
	// connection than a flow taken by ForwardAccept and served on a
	// goroutine of the taker's. It may block (it holds nothing of the
	// stack's), and is called concurrently for concurrent flows; the
	// stack's Close does not wait for it (its requests then fail with
	// net.ErrClosed). Flows handed to it are counted in
	// ForwardStats.TCPHandedOff. Ignored without AcceptTCP.
	HandleTCP func(Flow)
	// Echo offers the ICMP and ICMPv6 echo requests (ping) to addresses
	// in ForwardConfig.Prefixes that are not the stack's own as flows of
	// Proto FlowEcho, instead of answering or dropping them as
	// ForwardConfig.AnswerEcho says; ForwardEchoReply answers one. At most
	// MaxPendingEcho wait to be taken; past that they are dropped and
	// counted (ForwardStats.EchoDropped).
	Echo bool
}

// MaxPendingEcho bounds the echo requests offered to a forwarder (see
// ForwardOpen.Echo) and not yet taken by ForwardAccept.
const MaxPendingEcho = 256

// ForwardOpened answers ForwardOpen.
type ForwardOpened struct{ Handle Handle }

// ForwardAccept waits for the next flow offered to the forwarder. Handle:
// the forwarder. Answers Flow.
//
// A TCP flow is offered twice: first with no Handle, when its SYN came
// (the handshake waits for a ForwardVerdict), and once the handshake is
// over with the stream's Handle (a TCP socket, as TCPAccept gives); with
// ForwardOpen.AcceptTCP only the second time. A UDP
// flow is offered once, with the Handle of a UDP socket connected to the
// client and bound to the original destination, its first datagram
// queued; refuse it with a ForwardVerdict or take it by using the Handle.
// Either way the socket is the caller's to close.
type ForwardAccept struct{}

// FlowProto is a forwarded flow's transport protocol.
type FlowProto uint8

// The transport protocols of forwarded flows.
const (
	FlowTCP FlowProto = iota + 1
	FlowUDP
	// FlowEcho is an ICMP or ICMPv6 echo request (see ForwardOpen.Echo).
	FlowEcho
)

// String returns "tcp", "udp" or "echo".
func (p FlowProto) String() string {
	switch p {
	case FlowTCP:
		return "tcp"
	case FlowUDP:
		return "udp"
	case FlowEcho:
		return "echo"
	}
	return "unknown"
}

// Flow answers ForwardAccept: one forwarded flow.
type Flow struct {
	// ID names the flow in ForwardVerdict.
	ID    uint64
	Proto FlowProto
	// Local is the flow's original destination, Remote the client.
	Local, Remote netip.AddrPort
	// Handle is NoHandle for a TCP flow that waits for its verdict and
	// for an echo request, the flow's socket otherwise.
	Handle Handle
	// Message is an echo request's ICMP (ICMPv6) message, header
	// included (FlowEcho only; the ports of Local and Remote are 0).
	Message []byte
}

// ForwardEchoReply answers the echo request Request (a Flow's Message),
// sent by To to From, with an echo reply from From (an address in
// ForwardConfig.Prefixes) carrying Request's identifier, sequence number
// and data. A Request that is not an echo request of From's IP version,
// or a From outside the prefixes, fails with ErrInvalid. With Drop the
// request is not answered but counted dropped (ForwardStats.EchoDropped),
// and the other fields are not looked at: a forwarder with no room to
// handle one says so. Handle: the forwarder. Answers OK.
type ForwardEchoReply struct {
	From, To netip.Addr
	Request  []byte
	// Drop counts the request dropped instead of answering it.
	Drop bool
}

// Verdict is what the forwarder decides for a flow.
type Verdict uint8

// Verdicts for ForwardVerdict.
const (
	// Accept completes a TCP flow's handshake; it is offered again, with
	// its Handle, once the handshake is over.
	Accept Verdict = iota + 1
	// Reset refuses a TCP flow with a reset (RST): the client's connect
	// fails with ECONNREFUSED at once. For a UDP flow it is Unreachable.
	Reset
	// Unreachable refuses a flow with ICMP (ICMPv6) port unreachable, sent
	// from the original destination: the client's connect, or its next
	// UDP read, fails with ECONNREFUSED.
	Unreachable
	// Drop refuses a flow silently: a TCP client retransmits its SYN until
	// it gives up.
	Drop
)

// ForwardVerdict decides the flow ID of the forwarder: Accept, Reset,
// Unreachable or Drop for a TCP flow offered with no Handle; Reset,
// Unreachable or Drop for a UDP flow (this closes its socket: do not use
// its Handle after). A TCP flow whose handshake then fails is never
// offered again. An unknown or already decided ID fails with ErrInvalid.
// Handle: the forwarder. Answers OK.
type ForwardVerdict struct {
	ID      uint64
	Verdict Verdict
}

// ForwardStats are the forwarder's counters, in Stats.Forward (all zero
// without Config.Forward). Gauges say how many there are now; every other
// field counts events since New.
type ForwardStats struct {
	// Open is 1 while a forwarder is open (ForwardOpen), else 0 (a gauge).
	Open int
	// TCPPending is the number of TCP handshakes in progress (a gauge);
	// TCPFlows and UDPFlows the forwarded flows open, pending ones
	// included (gauges).
	TCPPending, TCPFlows, UDPFlows int
	// TCPOffered and UDPOffered count the flows offered to the forwarder;
	// TCPRefused and UDPRefused those it refused.
	TCPOffered, UDPOffered uint64
	TCPRefused, UDPRefused uint64
	// TCPHandshakeFailed counts accepted TCP flows whose handshake did not
	// complete (the client gave up, or reset).
	TCPHandshakeFailed uint64
	// TCPHandedOff counts the TCP flows handed to ForwardOpen.HandleTCP.
	TCPHandedOff uint64
	// TCPPendingDrops counts SYNs dropped past MaxPendingTCP;
	// TCPLimitRefused and UDPLimitRefused flows refused past MaxTCPFlows
	// and MaxUDPFlows; Unserved flows refused because no forwarder was
	// open.
	TCPPendingDrops, TCPLimitRefused, UDPLimitRefused, Unserved uint64
	// UDPExpired counts UDP flows closed by their idle timeout.
	UDPExpired uint64
	// OutsidePrefixes counts packets dropped for a destination outside
	// ForwardConfig.Prefixes; EchoDropped echo requests not answered (see
	// ForwardConfig.AnswerEcho), past MaxPendingEcho waiting, or dropped by
	// the forwarder (ForwardEchoReply.Drop: listener.Forwarder's, past its
	// MaxEchoHandlers running handlers).
	OutsidePrefixes, EchoDropped uint64
	// ACKsHeld counts the pure ACKs the link held back for a reply to
	// carry (see ForwardConfig.ACKHold); ACKsCovered those of them a later
	// segment carried, which were not sent.
	ACKsHeld, ACKsCovered uint64
}

func (ForwardOpen) command()      {}
func (ForwardAccept) command()    {}
func (ForwardVerdict) command()   {}
func (ForwardEchoReply) command() {}
func (ForwardOpened) response()   {}
func (Flow) response()            {}
