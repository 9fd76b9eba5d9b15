package core

import (
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/netcore-go/netcore/core/internal/pcap"
)

// wrapPCAP puts a capture of this stack's packets, written by netcore's own
// pcap writer into Config.PCAP, in front of link when one is wanted. It
// touches nothing process-wide: another stack's capture, or gVisor's
// sniffer logging, is not affected.
func (ns *Netstack) wrapPCAP(link stack.LinkEndpoint) (stack.LinkEndpoint, error) {
	if ns.cfg.PCAP == nil {
		return link, nil
	}
	w, err := pcap.NewWriter(ns.cfg.PCAP, pcap.Options{Now: ns.cfg.Clock.Now, Ethernet: ns.cfg.Medium == MediumEthernet})
	if err != nil {
		return nil, err
	}
	ns.capture = w
	return pcap.NewEndpoint(link, w), nil
}

// closePCAP writes out what the capture still buffers. It runs once the
// stack has stopped moving packets.
func (ns *Netstack) closePCAP() {
	if ns.capture != nil {
		_ = ns.capture.Close() // its error stays readable from PCAPError
	}
}

// PCAPError returns the error that stopped the packet capture, if any:
// writing to Config.PCAP failed, while the stack ran or when Close wrote
// out the last buffered records. It is nil without a capture.
func (ns *Netstack) PCAPError() error {
	if ns.capture == nil {
		return nil
	}
	return ns.capture.Err()
}
