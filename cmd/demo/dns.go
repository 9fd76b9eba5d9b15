package main

import (
	"errors"
	"net"
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/listener"
)

// dnsResponder answers A queries for one name over netcore UDP.
type dnsResponder struct {
	net.PacketConn
	name string // fully qualified, lower case
	addr netip.Addr
}

// serveDNS starts a responder on at that answers name with addr.
func serveDNS(ch core.Channel, at netip.AddrPort, name string, addr netip.Addr) (*dnsResponder, error) {
	pc, err := listener.ListenPacket(ch, "udp", at.String())
	if err != nil {
		return nil, err
	}
	d := &dnsResponder{PacketConn: pc, name: strings.ToLower(name) + ".", addr: addr}
	go d.serve()
	return d, nil
}

// serve answers queries until the socket is closed.
func (d *dnsResponder) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		if reply, err := d.answer(buf[:n]); err == nil {
			d.WriteTo(reply, from)
		}
	}
}

// answer builds the reply to one query: an A record for our name, an empty
// answer for other types, NXDOMAIN for other names.
func (d *dnsResponder) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	h.Response, h.Authoritative, h.RecursionAvailable = true, true, true
	known := strings.ToLower(q.Name.String()) == d.name
	if !known {
		h.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, h)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if known && q.Type == dnsmessage.TypeA {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
		b.AResource(rh, dnsmessage.AResource{A: d.addr.As4()})
	}
	return b.Finish()
}
