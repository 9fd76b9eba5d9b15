package core

// SendThroughGVisor makes every datagram ns sends go through gVisor's UDP
// endpoint, never a route cache: the reference the cache's packets are
// compared with. Call it before ns serves any request.
func SendThroughGVisor(ns *Netstack) { ns.gvisorSends = true }
