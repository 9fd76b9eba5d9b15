package core

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/raw"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/netcore-go/netcore/core/internal/pcap"
)

const nicID tcpip.NICID = 1

// maxTCPBuffer is the most a TCP buffer may grow to (auto-tuning or
// SetSockOpt).
const maxTCPBuffer = 8 << 20

// Netstack is a userspace TCP/IP stack and all its sockets' state, owned by
// whoever holds its owner token (see token): while Run drives the stack,
// the engine goroutine in Run or a caller of Channel.Request serving the
// queue itself; in manual mode, the goroutine in ProcessOneCmd or
// PollDeviceIO.
type Netstack struct {
	cfg   Config
	id    uint32
	s     *stack.Stack
	link  *linkEP
	q     *queue
	start time.Time

	// tok is the owner token: what follows, up to the readiness fields,
	// is the holder's alone.
	tok token
	// shut is set by shutdown: the token is never served again.
	shut bool // +checklocks:tok.mu

	// Holder-only state. The counters are atomics only so that Stats may
	// read them from any goroutine; only the holder changes them.
	tab      *table
	commands atomic.Uint64
	wakeups  atomic.Uint64
	// callerTurns counts the turns callers of Request served holding
	// the token.
	callerTurns atomic.Uint64
	parked      atomic.Int64
	// nonblockingErrors counts non-blocking requests answered with an
	// error, which no caller waits to hear.
	nonblockingErrors atomic.Uint64
	// final is Stats' answer once the stack has closed.
	final atomic.Pointer[Stats]

	// infoScratch is GetTCPInfo's buffer for gVisor's answer.
	infoScratch tcpip.TCPInfoOption
	// optIdle and optInterval are setOpt's keep-alive options, handed to
	// gVisor by pointer without allocating one per call.
	optIdle     tcpip.KeepaliveIdleOption
	optInterval tcpip.KeepaliveIntervalOption

	// The token holder's: see udpQueue.
	udpQueueDrops atomic.Uint64 // an atomic for Stats; the holder and the link's fast path (udpFast) add to it
	udpWatch      []*socket
	// routeGen counts changes of the stack's addresses: UDP route
	// caches filled before one are emptied (see routeCache).
	routeGen uint64
	// gvisorSends, set by tests before any request, sends every datagram
	// through gVisor's endpoint: the reference the cache's are checked by.
	gvisorSends bool
	// gvisorRecvs, set by tests before any request, delivers every
	// datagram through gVisor's UDP endpoint (see udpFast).
	gvisorRecvs bool
	// udpFast delivers plain inbound datagrams past gVisor; nil where the
	// configuration rules it out.
	udpFast *udpFast
	// sweepUDP asks the next pass over the ready list to sweep udpWatch.
	sweepUDP atomic.Bool

	// Readiness: gVisor's waiter callbacks append here and signal wake.
	readyMu   sync.Mutex
	readyList []*socket // +checklocks:readyMu
	// readySpare is the list serviceReady handed back: the holder's.
	readySpare []*socket
	wake       chan struct{}
	// Passes over the ready list, for the inbound barrier (see
	// inboundBudget): started and finished ones, and passed, signalled
	// when one finishes.
	passesStarted atomic.Uint64
	passesDone    atomic.Uint64
	passed        chan struct{}
	// wantPass asks the next holder's turn for a pass over the ready list
	// even if it is empty (the barrier waits for one).
	wantPass atomic.Bool

	stopping  chan struct{} // closed by Close
	closeOnce sync.Once
	runMu     sync.Mutex
	running   bool // +checklocks:runMu
	closed    bool // +checklocks:runMu
	runDone   chan struct{}

	capture *pcap.Writer // nil without Config.PCAP

	devMu   sync.Mutex
	devices []Device // +checklocks:devMu
	pumps   sync.WaitGroup
	// outDone is closed when the attached device's outbound side (its
	// pump, or its reader through the Source) has drained the link at
	// shutdown, or has stopped.
	outDone chan struct{}
	src     *source // the attached PullDevice's Source, if any

	poll pollState // PollDeviceIO's buffers, kept between calls

	fwd *forwarder // nil without Config.Forward
}

// New makes a stack from cfg (the zero Config works; see its fields for
// the defaults). It starts no goroutine of its own: call Run, or drive it
// by hand.
func New(cfg Config) (*Netstack, error) {
	cfg = cfg.withDefaults()
	if err := cfg.checkMedium(); err != nil {
		return nil, err
	}
	ns := &Netstack{
		cfg:      cfg,
		id:       rand.Uint32() | 1,
		link:     newLinkEP(ethernetFrameLen(cfg.Medium, cfg.MTU), cfg.OutboundQueueLen),
		q:        newQueue(cfg.QueueLen, cfg.MaxNonblocking),
		start:    time.Now(),
		wake:     make(chan struct{}, 1),
		passed:   make(chan struct{}, 1),
		stopping: make(chan struct{}),
		runDone:  make(chan struct{}),
	}
	ns.q.ns = ns
	ns.link.in.init(ns.stopping)
	ns.link.eth.on, ns.link.eth.mac, ns.link.eth.addr = cfg.Medium == MediumEthernet, cfg.MAC, cfg.MAC.linkAddr()
	ns.link.eth.otherHosts.Store(cfg.keepsOtherHosts())
	ns.tab = newTable(ns.id, cfg.MaxSockets)
	ns.initForward()
	ns.link.repeatACKs.Store(!cfg.SingleACKs)
	ns.link.dsack.on.Store(!cfg.DisableDSACK)
	ns.link.dsack.probeOn.Store(!cfg.DisableRecoveryProbes)
	ns.link.dsack.holdFor.Store(int64(max(cfg.SACKHold, 0)))
	ns.link.dsack.ctl.on.Store(cfg.WindowControl || cfg.LossRepair)
	ns.link.dsack.ctl.repairOn.Store(cfg.LossRepair)
	ns.link.reorder.longest.Store(int64(cfg.reorderHold()))
	ns.link.syn.every.Store(int64(cfg.synRetry()))
	if err := ns.initStack(); err != nil {
		return nil, err
	}
	ns.startLogging()
	return ns, nil
}

func (ns *Netstack) initStack() error {
	cfg := ns.cfg
	ns.s = stack.New(stack.Options{
		NetworkProtocols:   networkProtocols(cfg.Medium),
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		HandleLocal:        !cfg.SendLocalToDevice && cfg.Forward == nil, // a promiscuous NIC takes every source for its own
		Clock:              cfg.Clock,
		RawFactory:         raw.EndpointFactory{},
	})
	ns.udpFast = newUDPFast(ns)
	ns.link.udp = ns.udpFast
	sack := tcpip.TCPSACKEnabled(true)
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4096, Default: cfg.TCPSendBuffer, Max: max(maxTCPBuffer, cfg.TCPSendBuffer)}
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4096, Default: cfg.TCPRecvBuffer, Max: max(maxTCPBuffer, cfg.TCPRecvBuffer)}
	opts := []tcpip.SettableTransportProtocolOption{&sack, &snd, &rcv}
	if cfg.TCPMinRTO > 0 {
		minRTO := tcpip.TCPMinRTOOption(cfg.TCPMinRTO)
		opts = append(opts, &minRTO)
	}
	if cfg.TCPMaxRTO > 0 {
		maxRTO := tcpip.TCPMaxRTOOption(cfg.TCPMaxRTO)
		opts = append(opts, &maxRTO)
	}
	for _, opt := range opts {
		if err := ns.s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			ns.s.Close()
			return fmt.Errorf("netcore: tcp option %T: %v", opt, err)
		}
	}
	nicEP, err := ns.wrapPCAP(ns.link)
	if err != nil {
		ns.s.Close()
		return fmt.Errorf("netcore: pcap: %w", err)
	}
	nicEP = wrapEthernet(cfg.Medium, nicEP)
	if err := ns.s.CreateNICWithOptions(nicID, nicEP, stack.NICOptions{DeliverLinkPackets: true, QDisc: ns.nicQDisc(nicEP)}); err != nil {
		ns.s.Close()
		return fmt.Errorf("netcore: create NIC: %v", err)
	}
	ns.s.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})
	if err := ns.setAddrs(cfg.Addrs); err != nil {
		ns.s.Close()
		return err
	}
	if err := ns.addStaticNeighbors(cfg.StaticNeighbors); err != nil {
		ns.s.Close()
		return err
	}
	if err := ns.startForward(); err != nil {
		ns.s.Close()
		return err
	}
	return nil
}

var loopbackPrefixes = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.1/8"),
	netip.MustParsePrefix("::1/128"),
}

// setAddrs replaces the NIC's addresses with prefixes (plus loopback).
func (ns *Netstack) setAddrs(prefixes []netip.Prefix) error {
	ns.routeGen++
	ns.udpFast.setOwn(nil) // no fast datagram while the addresses change
	want := prefixes
	if !ns.cfg.DisableLoopback {
		want = append(append([]netip.Prefix(nil), prefixes...), loopbackPrefixes...)
	}
	for _, p := range want {
		if !p.IsValid() || p.Addr().Zone() != "" {
			return fmt.Errorf("netcore: bad address %v: %w", p, ErrInvalidAddr)
		}
	}
	for _, pa := range ns.s.AllAddresses()[nicID] {
		if pa.AddressWithPrefix.Address == header.IPv4Broadcast {
			continue // gVisor's own, for receiving limited broadcasts
		}
		ns.s.RemoveAddress(nicID, pa.AddressWithPrefix.Address)
	}
	if ns.fwd != nil {
		ns.fwd.setOwn(want)
	}
	for _, p := range want {
		pa := tcpip.ProtocolAddress{
			Protocol:          netProto(p.Addr()),
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpAddr(p.Addr()), PrefixLen: p.Bits()},
		}
		if err := ns.s.AddProtocolAddress(nicID, pa, addrProperties(p.Addr())); err != nil {
			return fmt.Errorf("netcore: add address %v: %w", p, fromTCPIP(err))
		}
	}
	ns.udpFast.setOwn(want)
	return nil
}

// addrProperties keeps gVisor from ever choosing a loopback address as the
// source for a destination that is not loopback: a stack with no address
// of a family then fails a dial to that family with ErrNetUnreach, as the
// kernel does, instead of sending from 127.0.0.1 or ::1 out of the device.
// A loopback destination still gets a loopback source (gVisor's local
// route uses the destination itself), and a socket bound to a loopback
// address explicitly keeps it.
func addrProperties(a netip.Addr) stack.AddressProperties {
	if a.IsLoopback() {
		return stack.AddressProperties{PEB: stack.NeverPrimaryEndpoint}
	}
	return stack.AddressProperties{}
}

// CommandChannel returns the channel through which any goroutine sends the
// stack commands.
func (ns *Netstack) CommandChannel() Channel { return Channel{q: ns.q} }

// MTU returns the device MTU the stack was configured with.
func (ns *Netstack) MTU() int { return ns.cfg.MTU }

// Run drives the stack: it serves commands, wakes parked requests when
// their sockets become ready, and lets attached devices move packets, until
// ctx ends or Close is called. Either way the stack is closed when Run
// returns: every pending request is answered with ErrClosed. Run returns
// nil after Close, ctx's error when ctx ended, and ErrClosed if the stack
// was already closed. Only one Run may be active.
func (ns *Netstack) Run(ctx context.Context) error {
	ns.runMu.Lock()
	if ns.closed || ns.running {
		ns.runMu.Unlock()
		return fmt.Errorf("netcore: Run: %w", ErrClosed)
	}
	ns.running = true
	ns.runMu.Unlock()
	defer close(ns.runDone)
	ns.tok.inline.Store(true)
	signal(ns.wake) // requests queued before Run
	for {
		select {
		case <-ns.wake:
			ns.wakeups.Add(1)
			ns.engineTurn()
		case <-ns.stopping:
			ns.shutdown()
			return nil
		case <-ctx.Done():
			ns.closeOnce.Do(func() { close(ns.stopping) })
			ns.markClosed()
			ns.shutdown()
			return ctx.Err()
		}
	}
}

// WaitForCmd waits up to timeout (0: forever) for the next command, for
// driving the stack by hand (the seed's wait_for_cmd_blocking). It fails
// with ErrTimeout, or ErrClosed once the stack is closed.
func (ns *Netstack) WaitForCmd(timeout time.Duration) (*Request, error) {
	var expire <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	select {
	case r := <-ns.q.c:
		return r, nil
	case <-ns.stopping:
		return nil, ErrClosed
	case <-expire:
		return nil, ErrTimeout
	}
}

// ProcessOneCmd runs one command from WaitForCmd (the seed's
// process_one_cmd). A command that cannot finish yet (a receive with no
// data) parks and is answered by a later ProcessOneCmd or PollDeviceIO.
//
// In manual mode (no Run) callers of Request only queue their requests
// and wait: nobody serves a command behind the driver's back, so
// WaitForCmd sees every one. ProcessOneCmd holds the owner token while it
// runs, so driving a stack by hand while Run is active is still sound
// (the two share the queue). After Close, r is answered with ErrClosed.
func (ns *Netstack) ProcessOneCmd(r *Request) {
	if r == nil {
		return
	}
	if !ns.acquire() {
		ns.answer(r, nil, ErrClosed)
		return
	}
	ns.process(r)
	ns.releaseDriver()
}

func makeBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, n)
}

// Close closes the stack: every pending and later request is answered with
// an error matching net.ErrClosed, every socket and attached device is
// closed, and the stack's goroutines end before Close returns. A second
// Close returns an error matching net.ErrClosed. In manual mode, call Close
// from the goroutine driving the stack, or after it stopped.
func (ns *Netstack) Close() error {
	first := false
	ns.closeOnce.Do(func() { first = true; close(ns.stopping) })
	running := ns.markClosed()
	if !first {
		<-ns.waitDone(running)
		return fmt.Errorf("netcore: stack already closed: %w", ErrClosed)
	}
	if running {
		<-ns.runDone
		return nil
	}
	ns.shutdown()
	return nil
}

// markClosed marks the stack closed and reports whether Run is active.
func (ns *Netstack) markClosed() bool {
	ns.runMu.Lock()
	defer ns.runMu.Unlock()
	ns.closed = true
	return ns.running
}

func (ns *Netstack) waitDone(running bool) <-chan struct{} {
	if running {
		return ns.runDone
	}
	c := make(chan struct{})
	close(c)
	return c
}

// shutdown answers everything, closes every socket, device and gVisor, and
// waits for the device pumps. It runs once, on the engine goroutine (or
// Close's, without Run), holding the token; the token is never served
// again after it.
func (ns *Netstack) shutdown() {
	ns.tok.inline.Store(false)
	ns.tok.mu.Lock()
	ns.tok.held.Store(true)
	ns.closeAll()
	ns.shut = true
	ns.tok.held.Store(false)
	ns.tok.mu.Unlock()
}

// closeAll is shutdown's work, done holding the token.
func (ns *Netstack) closeAll() {
	ns.q.closed.Store(true)
	close(ns.q.done)
	ns.drainClosed()
	// As at a process exit, every stream is reset (a FIN would leave the
	// peer waiting for a close this stack can no longer finish), and the
	// resets leave through the device before it stops.
	ns.tab.each(func(s *socket) { ns.closeSocket(s, s.kind == kindStream) })
	ns.link.closeSend()
	ns.awaitDrain()
	ns.link.close()
	ns.devMu.Lock()
	devs := ns.devices
	ns.devices = nil
	ns.devMu.Unlock()
	for _, d := range devs {
		d.Close()
	}
	ns.pumps.Wait()
	if ns.src != nil {
		ns.src.close()
	}
	ns.s.Close()
	if ns.fwd != nil {
		ns.fwd.shutdown()
	}
	ns.s.Wait()
	ns.closePCAP()
	ns.stopLogging()
	ns.freezeStats()
}

// CloseDrainTimeout bounds how long Close waits for the attached device
// to take the packets the stack sent last (the resets of its connections).
// A device that takes nothing delays Close by this much, no more.
const CloseDrainTimeout = 250 * time.Millisecond

// awaitDrain waits until the attached device's outbound side has written
// every queued packet, or CloseDrainTimeout.
func (ns *Netstack) awaitDrain() {
	ns.devMu.Lock()
	done := ns.outDone
	ns.devMu.Unlock()
	if done == nil {
		return
	}
	t := time.NewTimer(CloseDrainTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// drainClosed answers every queued request with ErrClosed until no sender
// is left between its closed check and its send.
func (ns *Netstack) drainClosed() {
	for {
		select {
		case r := <-ns.q.c:
			if _, ok := r.cmd.(cancel); ok {
				ns.q.putRequest(r)
				continue
			}
			ns.answer(r, nil, ErrClosed)
			continue
		default:
		}
		if ns.q.inflight.Load() == 0 && len(ns.q.c) == 0 {
			return
		}
		runtime.Gosched()
	}
}

// AttachDevice connects dev to the stack's NIC and starts two goroutines,
// owned by the stack, that pump packets between them in batches: one
// writes the stack's outbound packets to dev, one delivers what dev reads
// (the first is left out for a PullDevice, whose reader takes them through
// a Source, and the second for a PushDevice, which delivers them itself
// through a Receiver); a third bounds what is delivered and not yet
// consumed (see inboundBudget). A device that wants TCP super-segments (see
// GSODevice) gets them, and GRO on its inbound packets.
// The stack takes ownership of dev and closes it on Close. It fails, with
// an error matching ErrInvalid, if a device is attached already, if dev
// wants super-segments and cannot take them, or if dev's link parameters
// do not match the stack's (a PipeDev's Medium or MTU); dev is then still
// the caller's.
func (ns *Netstack) AttachDevice(dev Device) error {
	ns.devMu.Lock()
	defer ns.devMu.Unlock()
	select {
	case <-ns.stopping:
		return fmt.Errorf("netcore: attach device: %w", ErrClosed)
	default:
	}
	if len(ns.devices) > 0 {
		return fmt.Errorf("netcore: a device is already attached: %w", ErrInvalid)
	}
	if err := ns.checkLink(dev); err != nil {
		return err
	}
	gso := wantsGSO(dev)
	if gso && !takesGSO(dev) {
		return fmt.Errorf("netcore: attach device: it wants GSO but is neither a PullDevice nor an OffloadDevice: %w", ErrInvalid)
	}
	ns.devices = append(ns.devices, dev)
	if o, ok := dev.(offloader); ok && o.offload() {
		ns.link.offload.Store(true)
	}
	if gso {
		ns.link.off.gso.Store(true)
	}
	ns.outDone = make(chan struct{})
	if pd, ok := dev.(PullDevice); ok {
		ns.src = &source{link: ns.link, drained: ns.outDone}
		pd.SetSource(ns.src)
	} else {
		ns.pumps.Add(1)
		go ns.pumpOut(dev)
	}
	if pd, ok := dev.(PushDevice); ok {
		pd.SetReceiver(&receiver{link: ns.link, offload: gso})
	} else {
		ns.pumps.Add(1)
		go ns.pumpIn(dev)
	}
	ns.pumps.Add(1)
	go ns.runBarrier()
	return nil
}

// checkLink returns an error matching ErrInvalid if dev has link
// parameters (see linkChecker) that do not match the stack's.
func (ns *Netstack) checkLink(dev any) error {
	if m := mediumOf(dev); m != ns.cfg.Medium {
		return mediumError(fmt.Sprintf("device %T", dev), m, ns.cfg.Medium)
	}
	if lc, ok := dev.(linkChecker); ok {
		return lc.checkLink(ns.cfg.Medium, ns.cfg.MTU)
	}
	return nil
}

// pumpOut writes outbound packets to dev in batches until the stack stops
// or dev fails.
func (ns *Netstack) pumpOut(dev Device) {
	defer ns.pumps.Done()
	defer close(ns.outDone)
	if od, ok := dev.(OffloadDevice); ok && ns.link.off.gso.Load() {
		ns.pumpOutGSO(od)
		return
	}
	batch := make([]*stack.PacketBuffer, max(1, dev.BatchSize()))
	owned, isOwned := dev.(ownedWriter)
	var bufs [][]byte
	if !isOwned {
		bufs, _ = makeBufs(len(batch), ns.cfg.MTU)
	}
	pkts := make([][]byte, len(batch))
	send := func(batch []*stack.PacketBuffer) error {
		for i, p := range batch {
			if isOwned {
				pkts[i] = packetBytes(p)
			} else {
				bufs[i] = packetInto(p, bufs[i])
				pkts[i] = bufs[i]
			}
			p.DecRef()
		}
		defer clear(pkts)
		if isOwned {
			_, err := owned.writeOwned(pkts[:len(batch)])
			return err
		}
		_, err := dev.WritePackets(pkts[:len(batch)])
		return err
	}
	for ns.waitOut() {
		if peer := ns.link.peer.Load(); peer != nil {
			if err := ns.link.flushToPeer(peer); err != nil {
				ns.deviceStopped("write", err)
				return
			}
			continue
		}
		if err := ns.link.drainTo(batch, send); err != nil {
			ns.deviceStopped("write", err)
			return
		}
	}
}

// waitOut waits until outbound packets may be queued; it reports false
// once the stack is closing and every queued packet has been taken.
func (ns *Netstack) waitOut() bool {
	select {
	case <-ns.link.ready:
		return true
	case <-ns.link.drained:
		return false
	}
}

// pumpIn delivers packets dev reads until dev fails (it does on Close).
// Before each read it waits for room in the inbound gate, so packets wait
// in the device while gVisor is behind.
func (ns *Netstack) pumpIn(dev Device) {
	defer ns.pumps.Done()
	size := max(1, dev.BatchSize())
	if owned, ok := dev.(ownedReader); ok {
		pkts := make([][]byte, size)
		for ns.link.in.wait() {
			n, err := owned.readOwned(pkts)
			if ns.link.in.enter(true) != nil {
				return
			}
			for i := range n {
				ns.link.deliver(pkts[i])
				recyclePacket(pkts[i])
				pkts[i] = nil
			}
			ns.link.in.leave()
			if err != nil {
				return
			}
		}
		return
	}
	if ns.link.off.gso.Load() {
		ns.pumpInGRO(dev)
		return
	}
	bufs, sizes := makeBufs(size, max(ns.cfg.MTU, 1<<16))
	read := readFunc(dev)
	for ns.link.in.wait() {
		n, err := read(bufs, sizes)
		if ns.link.in.enter(true) != nil {
			return
		}
		for i := range n {
			ns.link.deliver(bufs[i][:sizes[i]])
		}
		ns.link.in.leave()
		if err != nil {
			ns.deviceStopped("read", err)
			return
		}
	}
}

// JoinPipe joins two stacks with an in-memory pipe of the given capacity
// per direction (0: unbounded): each gets a PipeDev on one end, with
// Offload on, so TCP crosses in 64 KiB super-segments whatever the MTU.
// Both stacks must have the same medium (else the error matches
// ErrMediumMismatch); on MediumEthernet they resolve each other with ARP
// and NDP across it.
// Both stacks need Run to move traffic.
//
// Since JoinPipe knows both ends are netcore stacks, packets then bypass
// the pipe: each stack's outbound packets are delivered straight into the
// other's gVisor, copied once, by its outbound pump or by its engine at the
// end of a batch of commands. That saves two goroutine hand-offs per
// packet; the pipe stays attached (closing either stack still closes it).
func JoinPipe(a, b *Netstack, capacity int) error {
	if a.cfg.Medium != b.cfg.Medium {
		return mediumError("JoinPipe: the second stack", b.cfg.Medium, a.cfg.Medium)
	}
	p := NewPipe(capacity)
	if err := a.AttachDevice(&PipeDev{End: p.A, Medium: a.cfg.Medium, MTU: a.cfg.MTU, Offload: true}); err != nil {
		p.A.Close()
		return err
	}
	if err := b.AttachDevice(&PipeDev{End: p.B, Medium: b.cfg.Medium, MTU: b.cfg.MTU, Offload: true}); err != nil {
		return err // a owns and will close the pipe
	}
	a.link.peer.Store(b.link)
	b.link.peer.Store(a.link)
	signal(a.link.ready) // packets queued before the join go the new way
	signal(b.link.ready)
	return nil
}
