package core

// SendThroughGVisor makes every datagram ns sends go through gVisor's UDP
// endpoint, never a route cache: the reference the cache's packets are
// compared with. Call it before ns serves any request.
func SendThroughGVisor(ns *Netstack) { ns.gvisorSends = true }

// ReceiveThroughGVisor makes every datagram ns receives go through
// gVisor's UDP endpoint, never the link's fast path (see udpFast). Call it
// before ns serves any request.
func ReceiveThroughGVisor(ns *Netstack) { ns.gvisorRecvs = true }
