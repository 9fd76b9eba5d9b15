// Package netconn adapts netcore sockets to the standard library's
// interfaces: TCPConn is a net.Conn with the methods of *net.TCPConn,
// UDPConn a net.PacketConn (and a net.Conn when connected), PingConn an ICMP
// echo socket, and Listener a net.Listener.
//
// Every blocking method is one round trip to the engine through a
// core.Channel. Errors are *net.OpError values whose Err matches, with
// errors.Is, what Go's net package would report: os.ErrDeadlineExceeded,
// net.ErrClosed, syscall.ECONNREFUSED, syscall.ECONNRESET and so on; io.EOF
// is returned bare for a clean end of stream, as Go does.
//
// Deadlines follow net.Conn: setting, moving or clearing one also affects
// calls already blocked, a deadline in the past fails calls at once, and the
// zero time clears it. Close wakes every call blocked on the conn.
package netconn
