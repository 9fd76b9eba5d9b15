package core

import (
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// The fast table finds each port's socket across its pages, a bind or a
// close changes only the new snapshot (one published before keeps what it
// had), and a page with no socket left is let go.
func TestFastTablePages(t *testing.T) {
	f := &udpFast{}
	f.tab.Store(&fastTable{})
	ports := []uint16{0x0035, 0x0036, 0x012c, 0xffff}
	for _, p := range ports {
		f.publish(p, &fastSock{peer: tcpip.FullAddress{Port: p}})
	}
	before := f.tab.Load()
	for _, p := range ports {
		if e := before.sock(p); e == nil || e.peer.Port != p {
			t.Fatalf("port %#x: entry %+v", p, e)
		}
	}
	if e := before.sock(0x0037); e != nil {
		t.Fatalf("port 0x37 has an entry: %+v", e)
	}
	f.publish(0x0035, nil)
	now := f.tab.Load()
	if now.sock(0x0035) != nil || now.sock(0x0036) == nil || before.sock(0x0035) == nil {
		t.Fatal("removing 0x35 changed the wrong entry or the older snapshot")
	}
	f.publish(0x0036, nil)
	if f.tab.Load().pages[0] != nil {
		t.Fatal("the emptied page is still held")
	}
	if f.tab.Load().sock(0x012c) == nil || f.tab.Load().sock(0xffff) == nil {
		t.Fatal("the other pages lost their entries")
	}
}
