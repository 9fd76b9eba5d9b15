package dialer

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// hostsConn is the conn the resolver's Dial returns. It sees each query
// before it leaves: an A or AAAA question for a name in the Dialer's Hosts
// is answered here, in memory; any other query is sent to a DNS server
// over the stack, dialled then. It speaks datagrams (one message per
// Write and Read) for the "udp" networks and length-prefixed messages for
// "tcp", as Go's resolver expects of each; Go tells them apart by whether
// the conn is a net.PacketConn, so only hostsPacketConn is one.
type hostsConn struct {
	dd     *dnsDialer
	ctx    context.Context // the resolver's dial context, for the server dial
	stream bool

	mu sync.Mutex
	// +checklocks:mu
	upstream net.Conn // the server conn, once a query needed one
	// +checklocks:mu
	reply    []byte       // an answer from Hosts not yet read
	deadline [2]time.Time // +checklocks:mu
	closed   bool         // +checklocks:mu
}

// hostsPacketConn is the datagram hostsConn.
type hostsPacketConn struct{ *hostsConn }

var (
	_ net.Conn       = (*hostsConn)(nil)
	_ net.PacketConn = hostsPacketConn{}
)

// Write takes one query: it answers it from Hosts or sends it upstream.
func (c *hostsConn) Write(b []byte) (int, error) {
	if up := c.up(); up != nil {
		return up.Write(b)
	}
	if reply, ok := c.dd.d.answerStatic(c.message(b)); ok {
		c.mu.Lock()
		c.reply = c.frame(reply)
		c.mu.Unlock()
		return len(b), nil
	}
	up, err := c.dial()
	if err != nil {
		return 0, err
	}
	return up.Write(b)
}

// Read returns the answer from Hosts, or reads from upstream.
func (c *hostsConn) Read(b []byte) (int, error) {
	if up := c.up(); up != nil {
		return up.Read(b)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reply) == 0 {
		return 0, io.EOF
	}
	n := copy(b, c.reply)
	c.reply = c.reply[n:]
	if !c.stream {
		c.reply = nil // a datagram longer than b is cut, as UDP does
	}
	return n, nil
}

// message strips a stream query's length prefix.
func (c *hostsConn) message(b []byte) []byte {
	if c.stream && len(b) >= 2 {
		return b[2:]
	}
	return b
}

// frame adds a stream answer's length prefix.
func (c *hostsConn) frame(msg []byte) []byte {
	if !c.stream {
		return msg
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)
}

// up returns the upstream conn, or nil if none was dialled.
func (c *hostsConn) up() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.upstream
}

// dial connects upstream and gives the new conn the deadlines set so far.
func (c *hostsConn) dial() (net.Conn, error) {
	network := "udp"
	if c.stream {
		network = "tcp"
	}
	up, err := c.dd.dialNext(c.ctx, network)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		up.Close()
		return nil, net.ErrClosed
	}
	up.SetReadDeadline(c.deadline[0])
	up.SetWriteDeadline(c.deadline[1])
	c.upstream = up
	return up, nil
}

// Close closes the upstream conn, if any.
func (c *hostsConn) Close() error {
	c.mu.Lock()
	up := c.upstream
	c.closed = true
	c.mu.Unlock()
	if up != nil {
		return up.Close()
	}
	return nil
}

// ReadFrom is Read, for net.PacketConn.
func (c hostsPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := c.Read(b)
	return n, c.RemoteAddr(), err
}

// WriteTo is Write, for net.PacketConn; addr is ignored.
func (c hostsPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) { return c.Write(b) }

// LocalAddr returns the upstream conn's local address, if any.
func (c *hostsConn) LocalAddr() net.Addr {
	if up := c.up(); up != nil {
		return up.LocalAddr()
	}
	return c.addr(netip.AddrPort{})
}

// RemoteAddr returns the upstream server's address, if any.
func (c *hostsConn) RemoteAddr() net.Addr {
	if up := c.up(); up != nil {
		return up.RemoteAddr()
	}
	return c.addr(netip.AddrPort{})
}

func (c *hostsConn) addr(ap netip.AddrPort) net.Addr {
	if c.stream {
		return net.TCPAddrFromAddrPort(ap)
	}
	return net.UDPAddrFromAddrPort(ap)
}

// SetDeadline sets both deadlines.
func (c *hostsConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the upstream conn's read deadline, now or when it
// is dialled.
func (c *hostsConn) SetReadDeadline(t time.Time) error { return c.setDeadline(0, t) }

// SetWriteDeadline sets the upstream conn's write deadline, now or when
// it is dialled.
func (c *hostsConn) SetWriteDeadline(t time.Time) error { return c.setDeadline(1, t) }

func (c *hostsConn) setDeadline(i int, t time.Time) error {
	c.mu.Lock()
	c.deadline[i] = t
	up := c.upstream
	c.mu.Unlock()
	if up == nil {
		return nil
	}
	if i == 0 {
		return up.SetReadDeadline(t)
	}
	return up.SetWriteDeadline(t)
}

// answerStatic answers an A or AAAA query for a name in Hosts; false for
// any other query, which goes to DNS.
func (d *Dialer) answerStatic(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil || (q.Type != dnsmessage.TypeA && q.Type != dnsmessage.TypeAAAA) {
		return nil, false
	}
	ips, ok := d.lookupStatic(q.Name.String())
	if !ok {
		return nil, false
	}
	reply, err := staticReply(h.ID, q, ips)
	return reply, err == nil
}

// staticReply builds an authoritative answer to q from ips: the addresses
// of the asked family (none is a valid answer: the name has no such
// records).
func staticReply(id uint16, q dnsmessage.Question, ips []netip.Addr) ([]byte, error) {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, Response: true, Authoritative: true, RecursionAvailable: true})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET}
	for _, ip := range ips {
		var err error
		switch ip = ip.Unmap(); {
		case ip.Is4() && q.Type == dnsmessage.TypeA:
			err = b.AResource(rh, dnsmessage.AResource{A: ip.As4()})
		case ip.Is6() && q.Type == dnsmessage.TypeAAAA:
			err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: ip.As16()})
		}
		if err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
