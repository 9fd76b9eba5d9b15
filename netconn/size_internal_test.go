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
}
