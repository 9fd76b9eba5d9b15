package gso_test

import (
	"fmt"

	"github.com/netcore-go/netcore/core/gso"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// A device that takes super-segments (a core.OffloadDevice) cuts each one
// into wire packets before it writes them out.
func ExampleSplit() {
	pkt, o := superSegment(false, make([]byte, 3500), 1400, header.TCPFlagAck|header.TCPFlagPsh, nil)
	out := make([][]byte, o.Segments(len(pkt)))
	for i := range out {
		out[i] = make([]byte, o.HdrLen+o.MSS)
	}
	sizes := make([]int, len(out))
	n, err := gso.Split(pkt, o, out, sizes)
	fmt.Println(n, err, sizes[:n])
	// Output: 3 <nil> [1440 1440 740]
}
