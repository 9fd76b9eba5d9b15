// Package core is netcore's engine: a gVisor TCP/IP stack whose socket state
// has one owner at a time, the holder of the engine's owner token, and which
// takes commands over a queue.
//
// A Netstack holds every socket's state. Any goroutine talks to it through a
// Channel: Request sends a command and waits for its one reply,
// RequestNonblocking hands a command over and does not wait. The engine is
// driven either by Run, which serves commands, socket readiness and attached
// devices until its context ends or the stack is closed, or by hand with
// WaitForCmd, ProcessOneCmd and PollDeviceIO (the seed crate's manual mode).
// While Run drives the stack, a caller of Request that finds the engine idle
// serves the queue itself, its own request included (in order, a bounded
// batch), and a caller whose request waits on a socket is woken to serve it
// when the socket is ready; Run's engine goroutine serves the rest.
//
// Packets enter and leave through a Device, in batches. Pipe and PipeDev are an
// in-memory device; JoinPipe joins two stacks with one. A stack's medium
// (Config.Medium) is IP packets (MediumIP, the default) or Ethernet frames
// (MediumEthernet: a MAC, ARP and NDP, static neighbours, Neighbors), and
// its devices carry the same.
//
// With Config.Forward a stack is in forwarding mode: it takes TCP and UDP flows
// addressed to any IP of its prefixes and offers each, with its original
// destination, to ForwardAccept (the listener package's Forwarder serves them).
//
// The engine keeps seven invariants, each with a test (see docs/architecture.md):
// one owner of socket state, exactly one reply per blocking request, no extra
// copy of caller buffers, a token holder that never blocks, bounded queues and
// tables, clean shutdown, and readiness by notification rather than polling.
package core
