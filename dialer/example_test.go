package dialer_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"

	"errors"
	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/dialer"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
	"net"
)

// twoStacks runs two stacks joined by an in-memory pipe, A at 192.0.2.1
// and B at 192.0.2.2, and returns them with a function that stops both.
func twoStacks() (a, b *core.Netstack, stop func()) {
	a = mustStack("192.0.2.1/24", "2001:db8::1/64")
	b = mustStack("192.0.2.2/24", "2001:db8::2/64")
	done := make(chan error, 2)
	go func() { done <- a.Run(context.Background()) }()
	go func() { done <- b.Run(context.Background()) }()
	if err := core.JoinPipe(a, b, 0); err != nil {
		log.Fatal(err)
	}
	return a, b, func() {
		a.Close()
		b.Close()
		<-done
		<-done
	}
}

func mustStack(prefixes ...string) *core.Netstack {
	var cfg core.Config
	for _, p := range prefixes {
		cfg.Addrs = append(cfg.Addrs, netip.MustParsePrefix(p))
	}
	ns, err := core.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	return ns
}

// An http.Client on one stack fetches a page from an http.Server on
// another, the name resolved by the Dialer's static hosts.
func Example() {
	a, b, stop := twoStacks()
	defer stop()

	// The server, on stack B.
	ln, err := listener.Listen(b.CommandChannel(), "tcp", "192.0.2.2:80")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.Host)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	// The client, on stack A.
	d := &dialer.Dialer{
		Channel: a.CommandChannel(),
		Hosts:   map[string][]netip.Addr{"www.example.test": {netip.MustParseAddr("192.0.2.2")}},
	}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://www.example.test/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status)
	fmt.Println(string(body))
	// Output:
	// 200 OK
	// hello from www.example.test
}

// Dialling "ping6" gives an ICMP echo conn: each Write sends one echo
// request, each Read returns one echo reply.
func ExampleDialer_Dial_ping() {
	a, _, stop := twoStacks()
	defer stop()

	d := &dialer.Dialer{Channel: a.CommandChannel()}
	c, err := d.Dial("ping6", "2001:db8::2")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(netconn.EchoRequest(true, 1, []byte("hi"))); err != nil {
		log.Fatal(err)
	}
	reply := make([]byte, 64)
	n, err := c.Read(reply)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("type %d, seq %d, data %q from %v\n", reply[0], int(reply[6])<<8|int(reply[7]), reply[8:n], c.RemoteAddr())
	// Output: type 129, seq 1, data "hi" from 2001:db8::2
}

// DialContext drops into http.Transport: an http.Client on stack A fetches
// a page from an http.Server on stack B.
func ExampleDialer_DialContext() {
	a, b, stop := twoStacks()
	defer stop()

	// Serve HTTP on stack B, on every address, port 80.
	ln, err := listener.Listen(b.CommandChannel(), "tcp", ":80")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello over netcore")
	})}
	go srv.Serve(ln)
	defer srv.Close()

	// Fetch it from stack A: the Dialer drops into http.Transport.
	d := &dialer.Dialer{Channel: a.CommandChannel()}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://192.0.2.2/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
	// Output: 200 OK hello over netcore
}

// A dialled UDP socket is a net.Conn: stack A sends a datagram to an echo
// server on stack B and reads the answer.
func ExampleDialer_Dial() {
	a, b, stop := twoStacks()
	defer stop()

	// A UDP server on B echoes one datagram.
	pc, err := listener.ListenPacket(b.CommandChannel(), "udp", "192.0.2.2:7")
	if err != nil {
		log.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		n, from, err := pc.ReadFrom(buf)
		if err == nil {
			pc.WriteTo(buf[:n], from)
		}
	}()

	// A dialled UDP socket on A is a net.Conn.
	d := &dialer.Dialer{Channel: a.CommandChannel()}
	c, err := d.Dial("udp", "192.0.2.2:7")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("echo me"))
	buf := make([]byte, 1500)
	n, _ := c.Read(buf)
	fmt.Println(string(buf[:n]))
	// Output: echo me
}

// Names resolve through the stack: static hosts first, then DNS servers
// reached over netcore with Go's own resolver.
func ExampleDialer_Resolver() {
	a, _, stop := twoStacks()
	defer stop()

	// Names resolve through the stack: static hosts first, then DNS
	// servers reached over netcore with Go's own resolver.
	d := &dialer.Dialer{
		Channel:    a.CommandChannel(),
		Hosts:      map[string][]netip.Addr{"db.internal": {netip.MustParseAddr("192.0.2.2")}},
		DNSServers: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.2:53")}, // a DNS server on B
	}
	addrs, err := d.Resolver().LookupNetIP(context.Background(), "ip4", "db.internal")
	fmt.Println(addrs, err)

	// A name Hosts lacks goes to the DNS server; none listens on B here.
	// The error names the server asked.
	_, err = d.Dial("tcp", "web.internal:80")
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		fmt.Println("lookup", dnsErr.Name, "on", dnsErr.Server, "failed")
	}
	// Output:
	// [192.0.2.2] <nil>
	// lookup web.internal on 192.0.2.2:53 failed
}

// The ping4 network: an ICMP echo request to stack B, and its reply.
func ExampleDialer_Dial_ping4() {
	a, _, stop := twoStacks()
	defer stop()

	// ping4 sends ICMP echo requests; every stack answers pings.
	d := &dialer.Dialer{Channel: a.CommandChannel()}
	c, err := d.Dial("ping4", "192.0.2.2")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Write(netconn.EchoRequest(false, 1, []byte("are you there?")))
	reply := make([]byte, 1500)
	n, err := c.Read(reply)
	fmt.Println(n > 8, err)
	// Output: true <nil>
}
