package listener_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/netconn"
)

// An http.Server on one stack serves an http.Client on another; the
// client's transport dials through netconn.
func Example() {
	sa, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	sb, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	core.JoinPipe(sa, sb, 0)
	go sa.Run(context.Background())
	go sb.Run(context.Background())
	defer sa.Close()
	defer sb.Close()

	ln, err := listener.Listen(sb.CommandChannel(), "tcp", ":80")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s over netcore", r.RemoteAddr[:len("192.0.2.1")])
	})}
	go srv.Serve(ln)
	defer srv.Close()

	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			c, err := netconn.DialTCP(ctx, sa.CommandChannel(), network, netip.AddrPort{}, netip.MustParseAddrPort(address))
			if err != nil {
				return nil, err // not c: a nil *TCPConn in a net.Conn is not nil
			}
			return c, nil
		},
	}}
	resp, err := client.Get("http://192.0.2.2/")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, string(body))
	client.CloseIdleConnections()
	// Output: 200 OK hello 192.0.2.1 over netcore
}

// ListenPacket opens a UDP socket on every address of the stack.
func ExampleListenPacket() {
	s, _ := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	go s.Run(context.Background())
	defer s.Close()
	pc, err := listener.ListenPacket(s.CommandChannel(), "udp4", ":0")
	if err != nil {
		panic(err)
	}
	defer pc.Close()
	_, err = listener.ListenPacket(s.CommandChannel(), "udp4", "[::1]:0")
	fmt.Println(pc.LocalAddr().(*net.UDPAddr).IP, err)
	// Output: 0.0.0.0 listen udp4: address [::1]:0: no suitable address found
}
