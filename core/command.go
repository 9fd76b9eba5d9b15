package core

import (
	"net/netip"
	"time"
)

// Command is a request to the engine. The concrete types are the structs in
// this file; each says which handle it takes and which Response it answers
// with. Commands that carry a buffer (sends, receives) may be passed by
// pointer to avoid a copy of the struct; the engine accepts both forms.
type Command interface{ command() }

// Response is the engine's answer to a Command.
type Response interface{ response() }

// OK answers commands that have nothing to report.
type OK struct{}

// ---- stack control ----

// Nop does nothing and answers OK. It measures a round trip.
type Nop struct{}

// SetStackAddrs replaces the stack's addresses (the seed's SetIps). Loopback
// addresses are kept unless Config.DisableLoopback. Handle: NoHandle.
// Answers OK.
type SetStackAddrs struct{ Addrs []netip.Prefix }

// GetStats asks for a snapshot of the stack's counters. Answers Stats.
type GetStats struct{}

// ---- generic socket commands ----

// CloseSocket closes the socket and frees its handle (Netstack.Close
// closes the whole stack). TCP streams end gracefully (FIN; gVisor
// finishes the close and TIME_WAIT on its own); a listener's queued
// connections are reset. Requests parked on the socket are answered with
// ErrClosed. Answers OK.
type CloseSocket struct{}

// Abort closes a TCP stream with a reset (RST) and frees its handle.
// Answers OK.
type Abort struct{}

// GetSocketAddrs asks for a socket's local and remote addresses. Answers Addrs.
type GetSocketAddrs struct{}

// Addrs answers GetSocketAddrs. Remote is the zero AddrPort when unconnected.
type Addrs struct{ Local, Remote netip.AddrPort }

// SockOpt names a socket option.
type SockOpt uint8

// Socket options for SetSockOpt and GetSockOpt. Durations are in
// nanoseconds, booleans 0 or 1.
const (
	OptNoDelay           SockOpt = iota + 1 // TCP_NODELAY
	OptKeepAlive                            // SO_KEEPALIVE
	OptKeepAliveIdle                        // TCP_KEEPIDLE (ns)
	OptKeepAliveInterval                    // TCP_KEEPINTVL (ns)
	OptKeepAliveCount                       // TCP_KEEPCNT
	OptLinger                               // SO_LINGER (ns; negative = off)
	OptSendBuffer                           // SO_SNDBUF (bytes)
	OptRecvBuffer                           // SO_RCVBUF (bytes)
)

// SetSockOpt sets an option on a socket. Answers OK.
type SetSockOpt struct {
	Opt   SockOpt
	Value int64
}

// GetSockOpt reads an option. Answers SockOptValue.
type GetSockOpt struct{ Opt SockOpt }

// SockOptValue answers GetSockOpt.
type SockOptValue struct{ Value int64 }

// ---- UDP ----

// UDPBind makes a UDP socket bound to Local. An unspecified address
// (0.0.0.0 or ::) binds every address; port 0 picks an ephemeral port. An
// IPv6 socket also carries IPv4 (dual stack). Handle: NoHandle. Answers
// UDPBound.
type UDPBind struct{ Local netip.AddrPort }

// UDPBound answers UDPBind.
type UDPBound struct {
	Handle Handle
	Local  netip.AddrPort
}

// UDPConnect sets the socket's default peer; sends without a destination
// go there and only its datagrams are received. Answers Addrs.
type UDPConnect struct{ Remote netip.AddrPort }

// UDPSend sends one datagram to To, or to the connected peer when To is the
// zero AddrPort. A blocking request borrows Buf until it is answered; a
// non-blocking one hands Buf over. Answers UDPSent, or Result (see below).
type UDPSend struct {
	To  netip.AddrPort
	Buf []byte
	// Result, if not nil, is where the engine writes its answer: it fills
	// *Result and answers with Result itself, a *UDPSent, instead of a
	// UDPSent value, which costs no allocation. The caller owns *Result and
	// reads it after the reply.
	Result *UDPSent
}

// UDPSent answers UDPSend.
type UDPSent struct{ N int }

// UDPRecv waits for one datagram and copies it into Buf. A datagram longer
// than Buf fills it; the rest is discarded and Truncated set. Answers
// UDPRecvd, or Result (see below).
type UDPRecv struct {
	Buf []byte
	// Result, if not nil, is where the engine writes its answer: it fills
	// *Result and answers with Result itself, a *UDPRecvd, instead of a
	// UDPRecvd value (boxing one allocates). The caller owns *Result and
	// reads it after the reply.
	Result *UDPRecvd
}

// UDPRecvd answers UDPRecv.
type UDPRecvd struct {
	N         int
	From      netip.AddrPort
	Truncated bool
}

// ---- ICMP echo (ping) ----

// PingOpen makes an ICMP echo socket (ICMPv4 for an IPv4 Local, ICMPv6 for
// IPv6), like Linux's unprivileged ping sockets. It takes UDPConnect,
// UDPSend and UDPRecv: a send carries one ICMP echo request (type, code,
// checksum, identifier, sequence, data), whose identifier and checksum the
// stack fills in; a receive returns one echo reply. Local's port is unused.
// Handle: NoHandle. Answers PingOpened.
type PingOpen struct{ Local netip.Addr }

// PingOpened answers PingOpen.
type PingOpened struct {
	Handle Handle
	Local  netip.Addr
}

// ---- TCP ----

// TCPListen makes a listener on Local (port 0: ephemeral; unspecified
// address: every address). Backlog <= 0 means Config.MaxBacklog; larger
// values are capped at it. Handle: NoHandle. Answers TCPListening.
type TCPListen struct {
	Local   netip.AddrPort
	Backlog int
}

// TCPListening answers TCPListen.
type TCPListening struct {
	Handle Handle
	Local  netip.AddrPort
}

// TCPAccept waits for the next connection on a listener and sets
// KeepAlive on it before it answers, in the same request. Answers
// TCPAccepted.
type TCPAccept struct {
	KeepAlive KeepAlive
}

// KeepAlive is the keep-alive setting a TCPConnect or TCPAccept applies to
// its new stream inside the engine, saving the round trips of SetSockOpt.
// The zero KeepAlive leaves the stack's default (probes off). With Enable,
// probes start after Idle, repeat every Interval and give up after Count
// unanswered; a zero field keeps gVisor's value for it (2 hours, 75 s, 9).
// Like Go's net package, the engine applies it on a best-effort basis: a
// value gVisor refuses is left out, and the stream is answered anyway.
type KeepAlive struct {
	Enable         bool
	Idle, Interval time.Duration
	Count          int
}

// TCPAccepted answers TCPAccept with the new stream's handle.
type TCPAccepted struct {
	Handle        Handle
	Local, Remote netip.AddrPort
}

// TCPConnect opens a stream to Remote, from Local if it is valid (else the
// stack picks the address and an ephemeral port), and answers once the
// handshake is done. Refused, unreachable, reset and timed-out connects fail
// with ErrConnRefused, ErrNetUnreach or ErrHostUnreach, ErrConnReset and
// ErrTimedOut. A connect cancelled before it completes frees its socket.
// KeepAlive is set on the stream before the handshake starts. Handle:
// NoHandle. Answers TCPConnected.
type TCPConnect struct {
	Local, Remote netip.AddrPort
	KeepAlive     KeepAlive
}

// TCPConnected answers TCPConnect.
type TCPConnected struct {
	Handle        Handle
	Local, Remote netip.AddrPort
}

// TCPSend writes Buf to the stream, waiting for buffer space until all of
// it is taken. A cancelled send answers with the bytes taken so far. A
// non-blocking send hands Buf over. Answers TCPSent.
type TCPSend struct{ Buf []byte }

// TCPSent answers TCPSend.
type TCPSent struct{ N int }

// TCPRecv waits for data and copies what is there (at most len(Buf)) into
// Buf. A clean end of stream fails with io.EOF. Answers TCPRecvd.
type TCPRecv struct{ Buf []byte }

// TCPRecvd answers TCPRecv.
type TCPRecvd struct{ N int }

// TCPShutdown shuts down the read side, the write side (sends FIN) or both.
// Answers OK.
type TCPShutdown struct{ Read, Write bool }

// ---- raw IP ----

// RawOpen opens a raw socket for one IP version (4 or 6) and transport
// protocol number. It receives every inbound packet of that protocol, whole
// (IP header included), and sends whole packets. Handle: NoHandle. Answers
// RawOpened.
type RawOpen struct {
	Version  int
	Protocol uint8
}

// RawOpened answers RawOpen.
type RawOpened struct{ Handle Handle }

// RawSend sends one whole IP packet of the socket's version out through
// the device. Answers RawSent.
type RawSend struct{ Packet []byte }

// RawSent answers RawSend.
type RawSent struct{ N int }

// RawRecv waits for one packet and copies it into Buf. Answers RawRecvd.
type RawRecv struct{ Buf []byte }

// RawRecvd answers RawRecv.
type RawRecvd struct {
	N         int
	Truncated bool
}

// ---- stats ----

// Stats is a snapshot of a stack's counters: Netstack.Stats returns one at
// any time, and it answers GetStats. Gauges say how many of something
// there are now; every other field counts events since New and only
// grows. Packet counts are of what crossed between the stack and its
// device (a TCP super-segment counts once, see GSODevice).
type Stats struct {
	// Sockets is the number of open sockets (a gauge); TCPStreams,
	// TCPListeners, UDPSockets, RawSockets and PingSockets split it by
	// kind.
	Sockets      int
	TCPStreams   int
	TCPListeners int
	UDPSockets   int
	RawSockets   int
	PingSockets  int
	// Parked is the number of requests parked inside the engine, waiting
	// for their socket to become ready (a gauge).
	Parked int
	// NonblockingHeld is the number of non-blocking requests taken and not
	// yet done, queued or parked (a gauge, at most Config.MaxNonblocking).
	NonblockingHeld int
	// NonblockingErrors counts non-blocking requests that failed in the
	// engine (a stale handle, a closed socket, a send error, the stack
	// closing): RequestNonblocking cannot report those to its caller.
	NonblockingErrors uint64
	// Commands counts the commands the engine processed, cancels
	// included.
	Commands uint64
	// EngineWakeups counts the times Run's engine goroutine woke, for a
	// batch of commands or for socket readiness.
	EngineWakeups uint64
	// CallerTurns counts the turns that callers of Channel.Request served
	// holding the owner token, instead of waking the engine goroutine: for
	// their own request when the engine was idle, or for the socket their
	// parked request waits on when it became ready.
	CallerTurns uint64

	// PacketsIn counts the packets the device delivered to the stack.
	PacketsIn uint64
	// PacketsOut counts the packets the stack sent to its device.
	PacketsOut uint64
	// OutboundDrops counts outbound packets dropped because the outbound
	// queue was full (Config.OutboundQueueLen) or a PollDevice took no
	// more.
	OutboundDrops uint64
	// InboundInvalid counts inbound packets of no known IP version.
	InboundInvalid uint64
	// FramesOtherHost, FramesRunt, FramesOversized and FramesUnknownType
	// count the inbound Ethernet frames (MediumEthernet) the stack dropped
	// before gVisor saw them: frames for another unicast MAC (kept in
	// forwarding or promiscuous mode), frames shorter than their 14-byte
	// header, frames longer than the MTU plus the header, and frames of an
	// ethertype other than IPv4, IPv6 and ARP (VLAN-tagged ones included).
	FramesOtherHost, FramesRunt, FramesOversized, FramesUnknownType uint64
	// ACKsRepeated counts the extra copies of pure TCP ACKs sent to the
	// device (see Config.SingleACKs); PacketsOut does not include them.
	ACKsRepeated uint64
	// DSACKsSent counts the pure ACKs the link sent with a duplicate-SACK
	// report (see Config.DisableDSACK), and ACKEchoesFixed those whose
	// timestamp echo it set to a duplicate segment's; each replaced one
	// ACK of gVisor's.
	DSACKsSent, ACKEchoesFixed uint64
	// SYNACKEchoesFixed counts the SYN-ACKs whose stale timestamp echo
	// the link moved forward after a retransmitted handshake, so that the
	// handshake gives no RTT sample of a second or more (see
	// Config.TCPMinRTO).
	SYNACKEchoesFixed uint64
	// RecoveryProbes counts the TCP segments the link sent again itself
	// during loss recovery (see Config.DisableRecoveryProbes).
	RecoveryProbes uint64
	// StallProbes counts the probe rounds the link sent outside loss
	// recovery, for a connection whose data stayed unacknowledged with no
	// progress (see Config.DisableRecoveryProbes); their segments count
	// in RecoveryProbes too.
	StallProbes uint64
	// ACKsHeld counts the gap-reporting ACKs the link held back (see
	// Config.SACKHold); each went out late or was superseded.
	ACKsHeld uint64
	// WindowsLowered counts the TCP ACKs whose window the link lowered
	// before the stack took them, and ProbeRTTs the times it drained a
	// connection's path to measure its round trip (see
	// Config.WindowControl).
	WindowsLowered, ProbeRTTs uint64
	// LossRepairs counts the TCP segments the link sent again itself,
	// LossRepairACKsHidden the ACKs it handed the stack without their SACK
	// blocks, and LossRepairPassed the losses it left to the stack (see
	// Config.LossRepair).
	LossRepairs, LossRepairACKsHidden, LossRepairPassed uint64
	// ReorderHeld counts the inbound TCP segments the link kept back
	// because a segment before them was missing (see Config.ReorderHold),
	// ReorderFilled the gaps that filled while held, and ReorderExpired
	// those whose hold ran out (let through to the stack as they were).
	ReorderHeld, ReorderFilled, ReorderExpired uint64
	// SYNsResent counts the copies of TCP SYNs the link sent early, and
	// SYNACKsReplayed the copies of SYN-ACKs it sent in answer to a
	// resent SYN (see Config.SYNRetry).
	SYNsResent, SYNACKsReplayed uint64

	// IPMalformedIn counts inbound IP packets dropped as malformed (bad
	// header, length or checksum).
	IPMalformedIn uint64
	// IPInvalidSourceIn counts inbound IP packets dropped for a source
	// address that must never arrive from a device (a loopback or
	// multicast source: "martian" packets).
	IPInvalidSourceIn uint64
	// IPInvalidDestinationIn counts inbound IP packets dropped because
	// their destination is not one of the stack's addresses (a loopback
	// destination from the device included).
	IPInvalidDestinationIn uint64

	// TCPEstablished is the number of TCP connections now in the
	// ESTABLISHED state (a gauge, from gVisor).
	TCPEstablished uint64
	// TCPCurrentConnected is the number of TCP connections now in any
	// connected state, ESTABLISHED through TIME-WAIT (a gauge).
	TCPCurrentConnected uint64
	// TCPActiveOpens counts connections opened by Connect; TCPPassiveOpens
	// those accepted by a listener.
	TCPActiveOpens  uint64
	TCPPassiveOpens uint64
	// TCPFailedConnects counts connects and accepts that ended in an error
	// (refused, reset or timed out during the handshake).
	TCPFailedConnects uint64
	// TCPSegmentsIn counts TCP segments received and parsed;
	// TCPSegmentsOut those sent, retransmissions and resets included.
	TCPSegmentsIn  uint64
	TCPSegmentsOut uint64
	// TCPRetransmits counts data segments sent again, for any reason;
	// TCPFastRetransmits those of them sent by fast recovery (duplicate
	// ACKs or SACK) rather than by a timeout.
	TCPRetransmits     uint64
	TCPFastRetransmits uint64
	// TCPRTOExpirations counts the times a retransmission timer fired.
	TCPRTOExpirations uint64
	// TCPResetsSent counts the TCP resets (RST) sent.
	TCPResetsSent uint64
	// TCPChecksumErrors counts TCP segments dropped for a bad checksum.
	TCPChecksumErrors uint64
	// TCPDSACKedSegments counts the sent segments peers reported received
	// twice (DSACK, RFC 2883), and TCPSpuriousRecoveries the loss
	// recoveries the senders found needless (RFC 3522, by DSACK or
	// timestamps).
	TCPDSACKedSegments, TCPSpuriousRecoveries uint64
	// TCPListenSYNDrops counts SYNs a listener dropped, and
	// TCPListenACKDrops handshakes' final ACKs, because its accept queue
	// (connections not accepted yet, at most the listener's backlog) was
	// full: a SYN flood, or an application that accepts too slowly.
	TCPListenSYNDrops uint64
	TCPListenACKDrops uint64

	// UDPPacketsIn counts UDP datagrams delivered to a socket;
	// UDPPacketsOut those sent.
	UDPPacketsIn  uint64
	UDPPacketsOut uint64
	// UDPRecvErrors counts UDP datagrams gVisor dropped because a
	// socket's receive buffer (which gVisor charges their payload only)
	// was full or closed.
	UDPRecvErrors uint64
	// UDPQueueDrops counts datagrams dropped because a UDP or ping
	// socket's receive queue, which charges each datagram its real memory
	// cost (its bytes plus a fixed overhead, so empty ones count too), was
	// full: see Config.UDPRecvBuffer.
	UDPQueueDrops uint64
	// UDPUnknownPortIn counts UDP datagrams for a port no socket has
	// bound.
	UDPUnknownPortIn uint64
	// UDPChecksumErrors counts UDP datagrams dropped for a bad checksum.
	UDPChecksumErrors uint64

	// Forward are the forwarding mode's counters (see Config.Forward).
	Forward ForwardStats

	// Uptime is the time since New; after Close, from New to the end of
	// Close.
	Uptime time.Duration
}

func (Nop) command()            {}
func (SetStackAddrs) command()  {}
func (GetStats) command()       {}
func (CloseSocket) command()    {}
func (Abort) command()          {}
func (GetSocketAddrs) command() {}
func (SetSockOpt) command()     {}
func (GetSockOpt) command()     {}
func (UDPBind) command()        {}
func (UDPConnect) command()     {}
func (UDPSend) command()        {}
func (UDPRecv) command()        {}
func (TCPListen) command()      {}
func (TCPAccept) command()      {}
func (TCPConnect) command()     {}
func (TCPSend) command()        {}
func (TCPRecv) command()        {}
func (TCPShutdown) command()    {}
func (RawOpen) command()        {}
func (PingOpen) command()       {}
func (RawSend) command()        {}
func (RawRecv) command()        {}
func (cancel) command()         {}

func (OK) response()           {}
func (Addrs) response()        {}
func (SockOptValue) response() {}
func (UDPBound) response()     {}
func (UDPSent) response()      {}
func (UDPRecvd) response()     {}
func (TCPListening) response() {}
func (TCPAccepted) response()  {}
func (TCPConnected) response() {}
func (TCPSent) response()      {}
func (TCPRecvd) response()     {}
func (RawOpened) response()    {}
func (PingOpened) response()   {}
func (RawSent) response()      {}
func (RawRecvd) response()     {}
func (Stats) response()        {}
