package core

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// TestRTOBounds: Config.TCPMinRTO and TCPMaxRTO reach gVisor's TCP; zero
// leaves gVisor's defaults (200 ms, 120 s).
func TestRTOBounds(t *testing.T) {
	for _, tc := range []struct {
		cfg      Config
		min, max time.Duration
	}{
		{Config{}, tcp.MinRTO, tcp.MaxRTO},
		{Config{TCPMinRTO: 20 * time.Millisecond, TCPMaxRTO: 5 * time.Second}, 20 * time.Millisecond, 5 * time.Second},
	} {
		ns, err := New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		var minRTO tcpip.TCPMinRTOOption
		var maxRTO tcpip.TCPMaxRTOOption
		ns.s.TransportProtocolOption(tcp.ProtocolNumber, &minRTO)
		ns.s.TransportProtocolOption(tcp.ProtocolNumber, &maxRTO)
		ns.Close()
		if time.Duration(minRTO) != tc.min || time.Duration(maxRTO) != tc.max {
			t.Errorf("Config %v/%v: RTO bounds %v..%v, want %v..%v", tc.cfg.TCPMinRTO, tc.cfg.TCPMaxRTO,
				time.Duration(minRTO), time.Duration(maxRTO), tc.min, tc.max)
		}
	}
}
