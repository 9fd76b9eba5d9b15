package core

import (
	"time"
)

// Stats returns a snapshot of the stack's counters (see Stats for each
// one). It may be called from any goroutine at any time: before Run, while
// the stack runs, and after Close. It reads counters, never the socket
// table: the engine keeps its own figures (sockets by kind, parked
// requests, commands, wakeups) in atomics that it alone updates, before it
// answers, so a request's effect shows in Stats once its reply has
// arrived; gVisor's and the link's counters are atomics too. Each figure
// is read on its own, so figures that change together (under load) may be
// a moment apart. After Close, Stats returns the figures as they stood
// when Close finished, the same at every call: the counters' final
// values, Uptime stopped, and the gauges at zero (every socket is closed).
// The GetStats command answers the same snapshot, through the engine.
func (ns *Netstack) Stats() Stats {
	if final := ns.final.Load(); final != nil {
		return *final
	}
	return ns.snapshot()
}

// snapshot reads every counter as it is now.
func (ns *Netstack) snapshot() Stats {
	st := Stats{
		Commands: ns.commands.Load(), EngineWakeups: ns.wakeups.Load(), CallerTurns: ns.callerTurns.Load(),
		NonblockingErrors: ns.nonblockingErrors.Load(), Parked: int(ns.parked.Load()),
		NonblockingHeld: int(ns.q.nonblocking.Load()),
		UDPQueueDrops:   ns.udpQueueDrops.Load(),
		Uptime:          time.Since(ns.start),
	}
	ns.tab.stats(&st)
	ns.link.stats(&st)
	ns.gvisorStats(&st)
	if ns.fwd != nil {
		ns.fwd.stats(&st.Forward)
	}
	return st
}

// freezeStats keeps the snapshot Stats returns from now on. It runs at the
// end of shutdown, when nothing changes any more.
func (ns *Netstack) freezeStats() {
	st := ns.snapshot()
	ns.final.Store(&st)
}

// stats adds the socket counts by kind to st. Any goroutine.
func (t *table) stats(st *Stats) {
	st.TCPStreams = int(t.byKind[kindStream].Load())
	st.TCPListeners = int(t.byKind[kindListener].Load())
	st.UDPSockets = int(t.byKind[kindUDP].Load())
	st.RawSockets = int(t.byKind[kindRaw].Load())
	st.PingSockets = int(t.byKind[kindPing].Load())
	st.Sockets = st.TCPStreams + st.TCPListeners + st.UDPSockets + st.RawSockets + st.PingSockets
}

// stats adds the link's counters (atomics) to st.
func (l *linkEP) stats(st *Stats) {
	st.PacketsIn, st.PacketsOut = l.packetsIn.Load(), l.packetsOut.Load()
	st.OutboundDrops, st.InboundInvalid = l.drops.Load(), l.invalidIn.Load()
	st.ACKsRepeated, st.DSACKsSent = l.acksRepeated.Load(), l.dsack.sent.Load()
	st.SYNACKEchoesFixed, st.ACKEchoesFixed = l.dsack.synACKsFixed.Load(), l.dsack.echoesFixed.Load()
	st.RecoveryProbes, st.ACKsHeld = l.dsack.probesSent.Load(), l.dsack.acksHeld.Load()
	st.StallProbes = l.dsack.stallProbes.Load()
	st.WindowsLowered, st.ProbeRTTs = l.dsack.ctl.clamped.Load(), l.dsack.ctl.probeRTTs.Load()
	st.LossRepairs, st.LossRepairACKsHidden = l.dsack.ctl.repaired.Load(), l.dsack.ctl.hidden.Load()
	st.LossRepairPassed = l.dsack.ctl.passed.Load()
	st.ReorderHeld, st.ReorderFilled = l.reorder.held.Load(), l.reorder.filled.Load()
	st.ReorderExpired = l.reorder.expired.Load()
	st.SYNsResent, st.SYNACKsReplayed = l.syn.resent.Load(), l.syn.replayed.Load()
	l.eth.stats(st)
}

// gvisorStats adds gVisor's stack-wide counters to st. They are atomics,
// safe to read from any goroutine, also after the stack closed.
func (ns *Netstack) gvisorStats(st *Stats) {
	g := ns.s.Stats()
	st.IPMalformedIn = g.IP.MalformedPacketsReceived.Value()
	st.IPInvalidSourceIn = g.IP.InvalidSourceAddressesReceived.Value()
	st.IPInvalidDestinationIn = g.IP.InvalidDestinationAddressesReceived.Value()
	t := g.TCP
	st.TCPEstablished, st.TCPCurrentConnected = t.CurrentEstablished.Value(), t.CurrentConnected.Value()
	st.TCPActiveOpens, st.TCPPassiveOpens = t.ActiveConnectionOpenings.Value(), t.PassiveConnectionOpenings.Value()
	st.TCPFailedConnects = t.FailedConnectionAttempts.Value()
	st.TCPSegmentsIn, st.TCPSegmentsOut = t.ValidSegmentsReceived.Value(), t.SegmentsSent.Value()
	st.TCPRetransmits, st.TCPFastRetransmits = t.Retransmits.Value(), t.FastRetransmit.Value()
	st.TCPRTOExpirations, st.TCPResetsSent = t.Timeouts.Value(), t.ResetsSent.Value()
	st.TCPChecksumErrors = t.ChecksumErrors.Value()
	st.TCPDSACKedSegments, st.TCPSpuriousRecoveries = t.SegmentsAckedWithDSACK.Value(), t.SpuriousRecovery.Value()
	st.TCPListenSYNDrops, st.TCPListenACKDrops = t.ListenOverflowSynDrop.Value(), t.ListenOverflowAckDrop.Value()
	u := g.UDP
	st.UDPPacketsIn, st.UDPPacketsOut = u.PacketsReceived.Value(), u.PacketsSent.Value()
	st.UDPRecvErrors, st.UDPUnknownPortIn = u.ReceiveBufferErrors.Value(), u.UnknownPortErrors.Value()
	st.UDPChecksumErrors = u.ChecksumErrors.Value()
}
