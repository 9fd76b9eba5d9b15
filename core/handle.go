package core

import (
	"fmt"
	"sync/atomic"
)

// Handle names one socket of one Netstack. Handles are values: compare them
// with ==. A handle is never reused while a stale copy could still name it:
// each slot of the socket table carries a generation that changes when the
// socket is freed, and each stack has its own id, so stale and foreign
// handles are told apart from live ones (ErrBadHandle).
type Handle struct {
	stack uint32
	slot  uint32 // index+1 into the socket table; 0 means no handle
	gen   uint32
}

// NoHandle is the handle for commands that name no socket (binds, connects,
// stack control).
var NoHandle Handle

// IsValid reports whether h names a socket (it may still be stale).
func (h Handle) IsValid() bool { return h.slot != 0 }

// String returns a short form for logs.
func (h Handle) String() string {
	if !h.IsValid() {
		return "handle(none)"
	}
	return fmt.Sprintf("handle(%d.%d@%x)", h.slot-1, h.gen, h.stack)
}

// table is the socket table: a slab of slots with generations and a free
// list. Only the token holder touches it.
type table struct {
	stack uint32
	max   int
	slots []slot
	free  []uint32 // indexes of free slots
	live  int
	// byKind counts the live sockets by kind, for Stats: atomics, so that
	// Stats may read them from any goroutine; only the token holder changes
	// them.
	byKind [numKinds]atomic.Int64
}

type slot struct {
	gen  uint32
	sock *socket
}

func newTable(stackID uint32, max int) *table {
	return &table{stack: stackID, max: max}
}

// add stores s and returns its handle, or ErrTooManySockets.
func (t *table) add(s *socket) (Handle, error) {
	if t.live >= t.max {
		return NoHandle, ErrTooManySockets
	}
	var idx uint32
	if n := len(t.free); n > 0 {
		idx = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		t.slots = append(t.slots, slot{})
		idx = uint32(len(t.slots) - 1)
	}
	sl := &t.slots[idx]
	sl.sock = s
	t.live++
	t.byKind[s.kind].Add(1)
	h := Handle{stack: t.stack, slot: idx + 1, gen: sl.gen}
	s.h = h
	return h, nil
}

// get returns the live socket h names, or ErrBadHandle.
func (t *table) get(h Handle) (*socket, error) {
	if h.stack != t.stack || h.slot == 0 || int(h.slot) > len(t.slots) {
		return nil, ErrBadHandle
	}
	sl := &t.slots[h.slot-1]
	if sl.gen != h.gen || sl.sock == nil {
		return nil, ErrBadHandle
	}
	return sl.sock, nil
}

// remove frees h's slot; the generation moves on so stale copies fail.
func (t *table) remove(h Handle) {
	sl := &t.slots[h.slot-1]
	t.byKind[sl.sock.kind].Add(-1)
	sl.sock = nil
	sl.gen++
	t.free = append(t.free, h.slot-1)
	t.live--
}

// each calls f for every live socket.
func (t *table) each(f func(*socket)) {
	for i := range t.slots {
		if s := t.slots[i].sock; s != nil {
			f(s)
		}
	}
}
