package core

import (
	"net/netip"
	"reflect"
	"testing"
)

// TestSetCmdOneForm checks that a Request hands the engine each buffer
// command (and TCPConnect and TCPAccept) in one form, by pointer,
// whichever form the caller passed, with the caller's fields; and that
// putRequest lets go of the copy.
func TestSetCmdOneForm(t *testing.T) {
	buf := []byte("data")
	to := netip.MustParseAddrPort("192.0.2.1:7")
	for _, tc := range []struct {
		value, pointer Command
	}{
		{TCPSend{Buf: buf}, &TCPSend{Buf: buf}},
		{TCPRecv{Buf: buf}, &TCPRecv{Buf: buf}},
		{UDPSend{To: to, Buf: buf}, &UDPSend{To: to, Buf: buf}},
		{UDPRecv{Buf: buf}, &UDPRecv{Buf: buf}},
		{RawSend{Packet: buf}, &RawSend{Packet: buf}},
		{RawRecv{Buf: buf}, &RawRecv{Buf: buf}},
		{TCPConnect{Remote: to, KeepAlive: KeepAlive{Enable: true}}, &TCPConnect{Remote: to, KeepAlive: KeepAlive{Enable: true}}},
		{TCPAccept{KeepAlive: KeepAlive{Count: 3}}, &TCPAccept{KeepAlive: KeepAlive{Count: 3}}},
	} {
		q := &queue{}
		q.pool.New = newRequest
		for _, cmd := range []Command{tc.value, tc.pointer} {
			r := q.getRequest(NoHandle, cmd)
			if reflect.TypeOf(r.cmd) != reflect.TypeOf(tc.pointer) || !reflect.DeepEqual(r.cmd, tc.pointer) {
				t.Errorf("%T: engine sees %T %+v, want %T %+v", cmd, r.cmd, r.cmd, tc.pointer, tc.pointer)
			}
			q.putRequest(r)
			if !reflect.DeepEqual(r.own, bufCmds{}) || r.conn != (connCmds{}) || r.connUsed {
				t.Errorf("%T: putRequest kept the command's copy", cmd)
			}
		}
	}
}
