package dialer_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/listener"
)

// record is what the test DNS server knows about one name.
type record struct {
	addrs    []netip.Addr // A and AAAA
	srv      []dnsmessage.SRVResource
	txt      []string
	truncate bool // UDP answers come back truncated, so the client retries over TCP
}

// dnsServer is a small authoritative DNS server on a netcore stack: UDP and
// TCP on one port, answering A, AAAA, SRV and TXT from a fixed zone.
type dnsServer struct {
	zone     map[string]record // keys are lower-case and end in a dot
	addr     netip.AddrPort
	udpCount atomic.Int64 // queries answered over UDP
	tcpCount atomic.Int64 // queries answered over TCP

	pc    net.PacketConn
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{} // +checklocks:mu
}

// startDNS serves zone on addr (port 0: ephemeral) of the stack behind ch
// until the test ends.
func startDNS(t *testing.T, ch core.Channel, addr netip.Addr, zone map[string]record) *dnsServer {
	t.Helper()
	s := &dnsServer{zone: zone, conns: map[net.Conn]struct{}{}}
	pc, err := listener.ListenPacket(ch, "udp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatalf("ListenPacket: %v", err)
	}
	s.pc = pc
	s.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	ln, err := listener.Listen(ch, "tcp", s.addr.String())
	if err != nil {
		pc.Close()
		t.Fatalf("Listen: %v", err)
	}
	s.ln = ln
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	t.Cleanup(s.close)
	return s
}

// close stops the server and waits for its goroutines.
func (s *dnsServer) close() {
	s.pc.Close()
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *dnsServer) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if msg, ok := s.answer(buf[:n], true); ok {
			s.udpCount.Add(1)
			s.pc.WriteTo(msg, from)
		}
	}
}

func (s *dnsServer) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

// serveConn answers length-prefixed queries on one TCP conn until EOF.
func (s *dnsServer) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	for {
		var n uint16
		if err := binary.Read(c, binary.BigEndian, &n); err != nil {
			return
		}
		q := make([]byte, n)
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		msg, ok := s.answer(q, false)
		if !ok {
			return
		}
		s.tcpCount.Add(1)
		if _, err := c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(msg)))); err != nil {
			return
		}
		if _, err := c.Write(msg); err != nil {
			return
		}
	}
}

// answer builds the reply to one query; false if the query is malformed.
func (s *dnsServer) answer(query []byte, udp bool) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	rec, known := s.zone[strings.ToLower(q.Name.String())]
	hdr := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !known {
		hdr.RCode = dnsmessage.RCodeNameError
	}
	hdr.Truncated = udp && rec.truncate
	msg, err := build(hdr, q, rec)
	return msg, err == nil
}

// build writes the reply: the question and, unless truncated, the records
// of the asked type.
func build(hdr dnsmessage.Header, q dnsmessage.Question, rec record) ([]byte, error) {
	b := dnsmessage.NewBuilder(nil, hdr)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if !hdr.Truncated {
		if err := addAnswers(&b, q, rec); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// addAnswers adds rec's records of q's type.
func addAnswers(b *dnsmessage.Builder, q dnsmessage.Question, rec record) error {
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	var errs []error
	switch q.Type {
	case dnsmessage.TypeA, dnsmessage.TypeAAAA:
		for _, ip := range rec.addrs {
			switch {
			case ip.Is4() && q.Type == dnsmessage.TypeA:
				errs = append(errs, b.AResource(rh, dnsmessage.AResource{A: ip.As4()}))
			case ip.Is6() && q.Type == dnsmessage.TypeAAAA:
				errs = append(errs, b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: ip.As16()}))
			}
		}
	case dnsmessage.TypeSRV:
		for _, srv := range rec.srv {
			errs = append(errs, b.SRVResource(rh, srv))
		}
	case dnsmessage.TypeTXT:
		for _, txt := range rec.txt { // one record each: Go joins a record's strings
			errs = append(errs, b.TXTResource(rh, dnsmessage.TXTResource{TXT: []string{txt}}))
		}
	}
	return errors.Join(errs...)
}
