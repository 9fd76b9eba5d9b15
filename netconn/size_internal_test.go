package netconn

import (
	"testing"
	"unsafe"
)

// TestTCPConnSize keeps a TCPConn in the runtime's 256-byte size class:
// a forwarding stack holds one per idle flow (the budget is 16 KiB
// a flow), so what only some conns use (Info's reply) is made on demand.
func TestTCPConnSize(t *testing.T) {
	if got := unsafe.Sizeof(TCPConn{}); got > 256 {
		t.Fatalf("a TCPConn is %d bytes, want at most 256", got)
	}
	// The conn, its two *net.TCPAddr with their IP bytes and its two
	// deadlines are one allocation (they were five to seven: 256 + 64 +
	// 2×48 + the IPs' blocks); it must stay within the 448-byte class.
	if got := unsafe.Sizeof(tcpConnBlock{}); got > 448 {
		t.Fatalf("a TCPConn's block is %d bytes, want at most 448", got)
	}
}
