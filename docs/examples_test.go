package docs_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/dialer"
	"github.com/netcore-go/netcore/listener"
	"github.com/netcore-go/netcore/tundev"
)

// twoStacks starts stacks A (192.0.2.1) and B (192.0.2.2), joined by an
// in-memory pipe; stop closes both.
func twoStacks() (a, b *core.Netstack, stop func()) {
	a, errA := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	b, errB := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	if err := errors.Join(errA, errB); err != nil {
		log.Fatal(err)
	}
	go a.Run(context.Background())
	go b.Run(context.Background())
	if err := core.JoinPipe(a, b, 0); err != nil {
		log.Fatal(err)
	}
	return a, b, func() { a.Close(); b.Close() }
}

// The seed crate's README example, in Go: drive the engine by hand.
func Example_seed() {
	ctx := context.Background()
	stack, _ := core.New(core.Config{}) // a zero Config is a working default
	defer stack.Close()
	channel := stack.CommandChannel()

	done := make(chan struct{})
	go func() { // process the bind and the send
		defer close(done)
		for range 2 {
			cmd, _ := stack.WaitForCmd(0)
			stack.ProcessOneCmd(cmd)
		}
	}()

	resp, _ := channel.Request(ctx, core.NoHandle, core.UDPBind{Local: netip.MustParseAddrPort("127.0.0.1:1000")})
	bound := resp.(core.UDPBound)
	channel.RequestNonblocking(bound.Handle, core.UDPSend{
		To:  netip.MustParseAddrPort("1.2.3.4:80"),
		Buf: []byte("hello"),
	})
	<-done

	pipe := core.NewPipe(0)
	stack.PollDeviceIO(&core.PipeDev{End: pipe.A, Medium: core.MediumIP, MTU: 1500})
	packet, _ := pipe.B.TryRecv() // 20 + 8 + 5 bytes, IPv4, ends with "hello"
	fmt.Println(len(packet), packet[0]>>4, string(packet[len(packet)-5:]))
	// Output: 33 4 hello
}

// The README's HTTP example: two stacks made by hand, a server on B, a
// client on A.
func Example_readmeHTTP() {
	// Two stacks in one process, A at 192.0.2.1 and B at 192.0.2.2,
	// joined by an in-memory link.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ending Run's context closes the stacks
	a, err := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	if err != nil {
		log.Fatal(err)
	}
	b, err := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	if err != nil {
		log.Fatal(err)
	}
	go a.Run(ctx)
	go b.Run(ctx)
	if err := core.JoinPipe(a, b, 0); err != nil {
		log.Fatal(err)
	}

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

// The TAP example needs root: it compiles, and runs only by hand.
func Example_tap() {
	// A kernel TAP device; the host gets 198.18.89.1, netcore 198.18.89.2.
	tap, err := tundev.OpenTAP(tundev.Config{
		Name:  "netcore-tap0",
		Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.89.1/24")},
	})
	if err != nil {
		log.Fatal(err) // needs CAP_NET_ADMIN, and Linux
	}
	stack, _ := core.New(core.Config{
		Medium: core.MediumEthernet, // a TAP carries Ethernet frames
		Addrs:  []netip.Prefix{netip.MustParsePrefix("198.18.89.2/24")},
		MTU:    tap.MTU(),
		// MAC: a random locally administered one unless set.
	})
	defer stack.Close() // closes the TAP too, removing the interface
	go stack.Run(context.Background())
	if err := stack.AttachDevice(tap); err != nil {
		log.Fatal(err)
	}
	ln, _ := listener.Listen(stack.CommandChannel(), "tcp", ":80")
	http.Serve(ln, http.FileServer(http.Dir(".")))
	// curl http://198.18.89.2/ from the host: the kernel finds netcore's
	// MAC with ARP ("ip neigh" lists it), then reaches it.
}

// The TUN example needs root: it compiles, and runs only by hand.
func Example_tun() {
	// A kernel TUN device; the host gets 198.18.88.1, netcore 198.18.88.2.
	tun, err := tundev.Open(tundev.Config{
		Name:  "netcore0",
		MTU:   1500,
		Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.88.1/24")},
	})
	if err != nil {
		log.Fatal(err) // needs CAP_NET_ADMIN
	}
	stack, _ := core.New(core.Config{
		Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.88.2/24")},
		MTU:   tun.MTU(),
	})
	defer stack.Close() // closes the TUN too, removing the interface
	go stack.Run(context.Background())
	if err := stack.AttachDevice(tun); err != nil {
		log.Fatal(err)
	}
	ln, _ := listener.Listen(stack.CommandChannel(), "tcp", ":80")
	http.Serve(ln, http.FileServer(http.Dir(".")))
	// curl http://198.18.88.2/ from the host now reaches netcore.
}

// The WireGuard example compiles; cmd/demo runs the same for real.
func Example_wireguard() {
	stack, err := core.New(core.Config{
		Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
		MTU:   1420,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer stack.Close()
	go stack.Run(context.Background())

	// The virtual TUN is a core.Device for the stack and a tun.Device for
	// wireguard-go: the stack's packets travel encrypted.
	vtun := tundev.NewVirtual(tundev.VirtualConfig{MTU: stack.MTU()})
	if err := stack.AttachDevice(vtun); err != nil {
		log.Fatal(err)
	}
	wg := device.NewDevice(vtun, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, "wg: "))
	defer wg.Close()

	// wireguard-go's configuration (UAPI) takes keys in hex; wg(8) shows
	// them in base64. Make a private key here (or convert one: wg genkey |
	// base64 -d | xxd -p -c 32) and give the peer its public key.
	key, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("our public key:", base64.StdEncoding.EncodeToString(key.PublicKey().Bytes()))
	peerKey, err := base64.StdEncoding.DecodeString("VGhpcyBpcyBub3QgYSByZWFsIHB1YmxpYyBrZXkuLi4=") // the peer's, from wg
	if err != nil {
		log.Fatal(err)
	}
	// No listen_port: the OS picks a free UDP port, so two devices in one
	// process (or host) never collide. Set one where a peer dials us.
	err = wg.IpcSet("private_key=" + hex.EncodeToString(key.Bytes()) + "\n" +
		"public_key=" + hex.EncodeToString(peerKey) + "\n" +
		"endpoint=203.0.113.1:51820\nallowed_ip=0.0.0.0/0\n")
	if err != nil {
		log.Fatal(err)
	}
	if err := wg.Up(); err != nil {
		log.Fatal(err)
	}

	// Dial through the tunnel as through any network.
	d := &dialer.Dialer{Channel: stack.CommandChannel()}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	client.Get("http://192.0.2.2/")
}
