package core

import (
	"fmt"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// GetTCPInfo fills *Info with a TCP socket's state and counters, as
// Linux's TCP_INFO does (see TCPInfo for what is there and what is not).
// It takes a stream or a listener. The engine writes *Info before it
// answers, and not after: the caller waits for the answer, so *Info may be
// a reused struct and the round trip allocates nothing. A nil Info fails
// with ErrInvalid. Answers OK.
type GetTCPInfo struct{ Info *TCPInfo }

func (GetTCPInfo) command() {}

// TCPInfo is one TCP socket's state and counters, modelled on Linux's
// struct tcp_info as far as gVisor and netcore know them. Counters count
// from the socket's creation (an accepted stream's from its handshake).
//
// gVisor sends and counts a TCP super-segment (up to 64 KiB, see
// Config.MTU and GSODevice) as one segment: between stacks joined by
// JoinPipe, or toward a device that takes super-segments, the segment
// counts are far below the number of wire-sized packets.
//
// Absent, because gVisor keeps them to itself (it does not fake them:
// gVisor answers TCP_MAXSEG with its default 536 whatever the route, so
// netcore reports no MSS): the sender's and receiver's MSS (tcpi_snd_mss,
// tcpi_rcv_mss, tcpi_advmss), the window scales, the bytes acknowledged
// and the bytes in flight (tcpi_bytes_acked, tcpi_unacked,
// tcpi_notsent_bytes; BytesWritten is what the stack took, acknowledged or
// not), SACKed and lost segment counts, the peer's window, minimum RTT,
// pacing and delivery rates, and the times of the last data and ACK.
type TCPInfo struct {
	// State is the connection's TCP state (TCPStateEstablished, ...).
	State TCPState
	// Congestion is the sender's congestion-control state.
	Congestion CongestionState
	// ReorderSeen reports that the sender saw segments reordered
	// (gVisor's RACK), as Linux's tcpi_reord_seen counts.
	ReorderSeen bool

	// RTT is the smoothed round-trip time and RTTVar its mean deviation
	// (RFC 6298 SRTT and RTTVAR). Both are zero until the first sample,
	// taken when sent data is acknowledged: a connection that only did
	// its handshake may show zero. gVisor keeps RTT at 1 ms or more (its
	// TCP timestamps count milliseconds), and RTO at 200 ms or more.
	RTT, RTTVar time.Duration
	// RTO is the current retransmission timeout.
	RTO time.Duration
	// SendCwnd is the congestion window and SendSsthresh the slow-start
	// threshold, both in segments (as Linux's tcpi_snd_cwnd); gVisor
	// starts ssthresh at a huge value, so it reads as such until the
	// first loss.
	SendCwnd, SendSsthresh uint32

	// SegmentsReceived counts the segments the connection accepted
	// (checksum good) and SegmentsSent those it sent, retransmissions
	// and pure ACKs included (Linux's tcpi_segs_in, tcpi_segs_out).
	SegmentsReceived, SegmentsSent uint64
	// SegmentsRetransmitted counts data segments sent again, for any
	// reason (Linux's tcpi_total_retrans); FastRetransmits those of them
	// sent by fast recovery, on duplicate ACKs or SACK, rather than by a
	// timeout.
	SegmentsRetransmitted, FastRetransmits uint64
	// RTOExpirations counts the times the retransmission timer fired.
	RTOExpirations uint64
	// ZeroWindowsAdvertised counts the times the receiver advertised a
	// zero window because the application did not read.
	ZeroWindowsAdvertised uint64
	// ChecksumErrors counts segments of the connection dropped for a bad
	// checksum.
	ChecksumErrors uint64

	// RecvQueued is the number of bytes received in order and not yet
	// read by the application (ss's Recv-Q); zero on a listener.
	RecvQueued int
	// SendBuffer and RecvBuffer are the socket's send and receive buffer
	// sizes in bytes (SO_SNDBUF, SO_RCVBUF), as auto-tuning left them.
	SendBuffer, RecvBuffer int

	// BytesWritten counts the bytes the application wrote that the stack
	// took (all TCPSend answers added up) and BytesRead those it read
	// (all TCPRecv answers); netcore counts both itself. Once the peer
	// has read everything, its BytesRead equals this side's
	// BytesWritten.
	BytesWritten, BytesRead uint64
}

// TCPState is a TCP connection state, numbered as Linux's (and gVisor's)
// are.
type TCPState uint8

// TCP states.
const (
	TCPStateEstablished TCPState = iota + 1
	TCPStateSynSent
	TCPStateSynRecv
	TCPStateFinWait1
	TCPStateFinWait2
	TCPStateTimeWait
	TCPStateClose
	TCPStateCloseWait
	TCPStateLastAck
	TCPStateListen
	TCPStateClosing
)

var tcpStateNames = [...]string{
	TCPStateEstablished: "ESTABLISHED", TCPStateSynSent: "SYN-SENT", TCPStateSynRecv: "SYN-RECV",
	TCPStateFinWait1: "FIN-WAIT-1", TCPStateFinWait2: "FIN-WAIT-2", TCPStateTimeWait: "TIME-WAIT",
	TCPStateClose: "CLOSE", TCPStateCloseWait: "CLOSE-WAIT", TCPStateLastAck: "LAST-ACK",
	TCPStateListen: "LISTEN", TCPStateClosing: "CLOSING",
}

// String returns the state's name as ss prints it ("ESTABLISHED").
func (s TCPState) String() string {
	if int(s) < len(tcpStateNames) && tcpStateNames[s] != "" {
		return tcpStateNames[s]
	}
	return fmt.Sprintf("TCPState(%d)", s)
}

// CongestionState is a TCP sender's congestion-control state, gVisor's
// finer version of Linux's tcpi_ca_state.
type CongestionState uint8

// Congestion-control states.
const (
	// CongestionOpen: no loss seen, ACKs arrive in order (Linux Open).
	CongestionOpen CongestionState = iota
	// CongestionDisorder: SACK blocks or duplicate ACKs arrived, no loss
	// declared yet (Linux Disorder).
	CongestionDisorder
	// CongestionFastRecovery: loss recovery on duplicate ACKs, without
	// SACK (Linux Recovery).
	CongestionFastRecovery
	// CongestionSACKRecovery: SACK-based loss recovery (Linux Recovery).
	CongestionSACKRecovery
	// CongestionRTORecovery: recovery after the retransmission timer
	// fired (Linux Loss).
	CongestionRTORecovery
)

var congestionNames = [...]string{
	CongestionOpen: "open", CongestionDisorder: "disorder", CongestionFastRecovery: "fast-recovery",
	CongestionSACKRecovery: "sack-recovery", CongestionRTORecovery: "rto-recovery",
}

// String returns the state's name ("open", "sack-recovery").
func (c CongestionState) String() string {
	if int(c) < len(congestionNames) {
		return congestionNames[c]
	}
	return fmt.Sprintf("CongestionState(%d)", c)
}

func congestionState(s tcpip.CongestionControlState) CongestionState {
	switch s {
	case tcpip.RTORecovery:
		return CongestionRTORecovery
	case tcpip.FastRecovery:
		return CongestionFastRecovery
	case tcpip.SACKRecovery:
		return CongestionSACKRecovery
	case tcpip.Disorder:
		return CongestionDisorder
	}
	return CongestionOpen
}

// tcpInfo answers GetTCPInfo for s.
func (ns *Netstack) tcpInfo(s *socket, c GetTCPInfo) error {
	if s.kind != kindStream && s.kind != kindListener {
		return ErrWrongKind
	}
	if c.Info == nil {
		return ErrInvalid
	}
	g := &ns.infoScratch // a field, not a local: no allocation
	if err := s.ep.GetSockOpt(g); err != nil {
		return fromTCPIP(err)
	}
	*c.Info = TCPInfo{
		State: TCPState(g.State), Congestion: congestionState(g.CcState), ReorderSeen: g.ReorderSeen,
		RTT: g.RTT, RTTVar: g.RTTVar, RTO: g.RTO, SendCwnd: g.SndCwnd, SendSsthresh: g.SndSsthresh,
		BytesWritten: s.bytesWritten, BytesRead: s.bytesRead,
	}
	s.fillEndpointInfo(c.Info)
	return nil
}

// fillEndpointInfo adds gVisor's per-endpoint counters, queue and buffer
// sizes to info.
func (s *socket) fillEndpointInfo(info *TCPInfo) {
	if st, ok := s.ep.Stats().(*tcp.Stats); ok {
		info.SegmentsReceived, info.SegmentsSent = st.SegmentsReceived.Value(), st.SegmentsSent.Value()
		info.SegmentsRetransmitted = st.SendErrors.Retransmits.Value()
		info.FastRetransmits = st.SendErrors.FastRetransmit.Value()
		info.RTOExpirations = st.SendErrors.Timeouts.Value()
		info.ZeroWindowsAdvertised = st.ReceiveErrors.ZeroRcvWindowState.Value()
		info.ChecksumErrors = st.ReceiveErrors.ChecksumErrors.Value()
	}
	if s.kind == kindStream {
		info.RecvQueued, _ = s.ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption)
	}
	o := s.ep.SocketOptions()
	info.SendBuffer, info.RecvBuffer = int(o.GetSendBufferSize()), int(o.GetReceiveBufferSize())
}
