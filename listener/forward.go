package listener

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/netconn"
)

// Forwarder serves the flows of a stack in forwarding mode
// (core.Config.Forward): every TCP connection and UDP flow its device
// brings for any address of the configured prefixes. Each flow is decided
// by Allow and served by HandleTCP or HandleUDP, on a goroutine of its
// own, so a slow handler holds up only its flow (without Allow, a TCP
// flow's HandleTCP runs on the goroutine that completed its handshake:
// see core.ForwardOpen.HandleTCP). Its zero value accepts
// nothing (no handlers: every flow is refused).
type Forwarder struct {
	// Allow decides a new flow before anything is answered: before the
	// TCP handshake (the client sees nothing until then), before the
	// first UDP datagram is read. f.Local is the original destination,
	// f.Remote the client. nil accepts every flow that has a handler. It
	// runs on a goroutine of its own; while it runs a TCP flow holds one
	// of core.ForwardConfig.MaxPendingTCP handshakes.
	Allow func(ctx context.Context, f core.Flow) core.Verdict

	// HandleTCP serves an accepted TCP flow: c's LocalAddr is the original
	// destination, its RemoteAddr the client. The flow is c's: CloseWrite
	// passes a half-close on, Close ends it (Serve closes c after
	// HandleTCP returns, and when Serve ends). nil refuses TCP flows with
	// a reset.
	HandleTCP func(ctx context.Context, c *netconn.TCPConn)

	// HandleUDP serves a UDP flow (one per 5-tuple): c is connected to the
	// client and bound to the original destination, with the flow's first
	// datagram ready to Read. When the flow has been idle past its timeout
	// (core.ForwardConfig.UDPTimeout) the stack closes it: Read returns
	// io.EOF, and so does every later Read. Serve closes c after HandleUDP
	// returns. nil refuses UDP flows with ICMP port unreachable.
	HandleUDP func(ctx context.Context, c *UDPFlow)

	// HandleEcho, if set, gets the ICMP and ICMPv6 echo requests (ping)
	// to the forwarded addresses, on a goroutine of its own, instead of
	// the stack answering or dropping them (core.ForwardConfig.AnswerEcho):
	// the request is answered, from its original destination, if it
	// returns true — after pinging the real host, say. Requests past
	// core.MaxPendingEcho waiting, or past MaxEchoHandlers running
	// handlers, are dropped and counted (core.ForwardStats.EchoDropped).
	HandleEcho func(ctx context.Context, e Echo) bool
}

// MaxEchoHandlers bounds the HandleEcho calls a Forwarder runs at once.
const MaxEchoHandlers = 256

// Echo is an echo request handed to Forwarder.HandleEcho.
type Echo struct {
	// Local is the request's original destination, Remote its sender.
	Local, Remote netip.Addr
	// ID and Seq are the request's identifier and sequence number, Data
	// its payload.
	ID, Seq uint16
	Data    []byte

	msg []byte // the ICMP message
}

// ErrNoForwarding is returned by Serve for a stack without
// core.Config.Forward, or one whose forwarder is open already. It matches
// core.ErrInvalid.
var ErrNoForwarding = errors.Join(errors.New("listener: stack not in forwarding mode, or its forwarder is served already"), core.ErrInvalid)

// Serve serves the stack's forwarded flows until ctx ends or the stack
// closes. Flows that come before it has opened the stack's forwarder are
// refused (Stats.Forward.Open is 1 once it has). When it ends it stops taking flows (those not yet accepted are reset),
// cancels the context handed to the handlers, closes every flow still
// open and waits for its handlers to return. It returns ctx's error, or
// an error matching net.ErrClosed when the stack closed.
func (fw *Forwarder) Serve(ctx context.Context, ch core.Channel) error {
	s := &serving{fw: fw, ch: ch, conns: make(map[io.Closer]struct{}), echoes: make(chan struct{}, MaxEchoHandlers)}
	s.ctx, s.cancel = context.WithCancel(ctx)
	open := core.ForwardOpen{AcceptTCP: fw.Allow == nil && fw.HandleTCP != nil, Echo: fw.HandleEcho != nil}
	if open.AcceptTCP {
		open.HandleTCP = s.handOff
	}
	resp, err := ch.Request(ctx, core.NoHandle, open)
	if err != nil {
		s.cancel()
		if errors.Is(err, core.ErrInvalid) {
			err = ErrNoForwarding
		}
		return &net.OpError{Op: "listen", Net: "forward", Err: err}
	}
	s.h = resp.(core.ForwardOpened).Handle
	defer s.stop()
	for {
		resp, err := ch.Request(s.ctx, s.h, core.ForwardAccept{})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &net.OpError{Op: "accept", Net: "forward", Err: err}
		}
		s.flow(s.ctx, resp.(core.Flow))
	}
}

// serving is one Serve call's state.
type serving struct {
	fw     *Forwarder
	ch     core.Channel
	h      core.Handle
	ctx    context.Context // the handlers'
	cancel context.CancelFunc
	wg     sync.WaitGroup
	echoes chan struct{} // a slot per HandleEcho call running

	mu     sync.Mutex
	conns  map[io.Closer]struct{} // flows being handled
	closed bool                   // stop has closed them
}

// flow starts serving one offered flow.
func (s *serving) flow(ctx context.Context, f core.Flow) {
	if f.Proto == core.FlowEcho {
		s.echo(ctx, f)
		return
	}
	if f.Proto == core.FlowTCP && !f.Handle.IsValid() && s.fw.Allow == nil {
		s.verdict(f, s.defaultVerdict(f)) // no decision to wait for
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.serveFlow(ctx, f)
	}()
}

// handOff serves an established TCP flow on the goroutine that completed
// its handshake (core.ForwardOpen.HandleTCP; only without Allow), counted
// among the handlers stop waits for; after stop it closes the flow.
func (s *serving) handOff(f core.Flow) {
	if !s.enter() {
		netconn.NewTCPConn(s.ch, f.Handle, f.Local, f.Remote).Close()
		return
	}
	defer s.wg.Done()
	s.serveFlow(s.ctx, f)
}

// enter counts a handler in, unless stop has begun.
func (s *serving) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *serving) serveFlow(ctx context.Context, f core.Flow) {
	switch {
	case f.Proto == core.FlowTCP && !f.Handle.IsValid():
		s.verdict(f, s.decide(ctx, f))
	case f.Proto == core.FlowTCP:
		c := netconn.NewTCPConn(s.ch, f.Handle, f.Local, f.Remote)
		s.run(c, func() { s.fw.HandleTCP(ctx, c) })
	default:
		if v := s.decide(ctx, f); v != core.Accept {
			s.verdict(f, v)
			return
		}
		c := &UDPFlow{UDPConn: netconn.NewUDPConn(s.ch, f.Handle, f.Local, f.Remote)}
		s.run(c, func() { s.fw.HandleUDP(ctx, c) })
	}
}

// echo runs HandleEcho for an echo request, if a slot is free, and
// answers it if HandleEcho says so.
func (s *serving) echo(ctx context.Context, f core.Flow) {
	select {
	case s.echoes <- struct{}{}:
	default: // too many running: dropped, and counted
		_, _ = s.ch.Request(context.Background(), s.h, core.ForwardEchoReply{Drop: true})
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.echoes }()
		e := Echo{Local: f.Local.Addr(), Remote: f.Remote.Addr(), msg: f.Message}
		if len(f.Message) >= 8 {
			e.ID, e.Seq = binary.BigEndian.Uint16(f.Message[4:]), binary.BigEndian.Uint16(f.Message[6:])
			e.Data = f.Message[8:]
		}
		if s.fw.HandleEcho(ctx, e) {
			_, _ = s.ch.Request(context.Background(), s.h, core.ForwardEchoReply{From: e.Local, To: e.Remote, Request: e.msg})
		}
	}()
}

// decide runs Allow for a flow that has a handler.
func (s *serving) decide(ctx context.Context, f core.Flow) core.Verdict {
	v := s.defaultVerdict(f)
	if v == core.Accept && s.fw.Allow != nil {
		v = s.fw.Allow(ctx, f)
	}
	return v
}

// defaultVerdict accepts a flow that has a handler and refuses others.
func (s *serving) defaultVerdict(f core.Flow) core.Verdict {
	switch {
	case f.Proto == core.FlowTCP && s.fw.HandleTCP == nil:
		return core.Reset
	case f.Proto == core.FlowUDP && s.fw.HandleUDP == nil:
		return core.Unreachable
	}
	return core.Accept
}

// verdict tells the stack a flow's verdict. A failure means the stack or
// the forwarder closed, which refuses the flow anyway.
func (s *serving) verdict(f core.Flow, v core.Verdict) {
	_, _ = s.ch.Request(context.Background(), s.h, core.ForwardVerdict{ID: f.ID, Verdict: v})
}

// run calls handle for the flow c, closes c after, and lets stop close c
// while handle runs.
func (s *serving) run(c io.Closer, handle func()) {
	if !s.track(c) {
		c.Close()
		return
	}
	defer s.untrack(c)
	handle()
}

func (s *serving) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *serving) untrack(c io.Closer) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// stop closes the forwarder, cancels the handlers' context, closes every
// flow being handled and waits for the handlers.
func (s *serving) stop() {
	_, _ = s.ch.Request(context.Background(), s.h, core.CloseSocket{})
	s.cancel()
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	s.wg.Wait()
}

// UDPFlow is one forwarded UDP flow: a UDP socket connected to the client
// (RemoteAddr) and bound to the flow's original destination (LocalAddr).
// Read and Write move one datagram each. Once the stack expired the flow
// (see Forwarder.HandleUDP) Read returns io.EOF.
type UDPFlow struct {
	*netconn.UDPConn
	eof atomic.Bool
}

// Read reads the flow's next datagram into b; io.EOF once the flow
// expired.
func (c *UDPFlow) Read(b []byte) (int, error) {
	if c.eof.Load() {
		return 0, io.EOF
	}
	n, err := c.UDPConn.Read(b)
	if err == io.EOF {
		c.eof.Store(true)
	}
	return n, err
}
