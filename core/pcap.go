package core

import (
	"io"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip/link/sniffer"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// pcapSnapLen is the most of each packet a capture keeps: all of a 64 KiB
// super-segment.
const pcapSnapLen = 1 << 16

// pcapWriter serialises gVisor's sniffer writes (it writes from every
// goroutine that moves a packet) and stops at the first error instead of
// letting the sniffer panic.
type pcapWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (p *pcapWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		_, p.err = p.w.Write(b)
	}
	return len(b), nil
}

func (p *pcapWriter) error() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// wrapPCAP puts gVisor's sniffer in front of link when a capture is wanted.
func (ns *Netstack) wrapPCAP(link stack.LinkEndpoint) (stack.LinkEndpoint, error) {
	if ns.cfg.PCAP == nil {
		return link, nil
	}
	sniffer.LogPackets.Store(0)
	ns.pcap = &pcapWriter{w: ns.cfg.PCAP}
	return sniffer.NewWithWriter(link, ns.pcap, pcapSnapLen)
}

// PCAPError returns the error that stopped the packet capture, if any.
func (ns *Netstack) PCAPError() error {
	if ns.pcap == nil {
		return nil
	}
	return ns.pcap.error()
}
