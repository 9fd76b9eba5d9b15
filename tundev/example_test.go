package tundev_test

import (
	"fmt"
	"log"
	"net/netip"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/tundev"
	"golang.zx2c4.com/wireguard/tun"
)

// A Virtual joins a stack to wireguard-go: attach it to the stack, then pass
// it to device.NewDevice (see TestWireGuardHTTP for a whole tunnel).
func ExampleNewVirtual() {
	stack, err := core.New(core.Config{MTU: 1420, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	if err != nil {
		log.Fatal(err)
	}
	defer stack.Close() // closes the Virtual too
	v := tundev.NewVirtual(tundev.VirtualConfig{MTU: stack.MTU()})
	if err := stack.AttachDevice(v); err != nil {
		log.Fatal(err)
	}
	// dev := device.NewDevice(v, conn.NewDefaultBind(), logger)
	mtu, _ := v.MTU()
	fmt.Println(<-v.Events() == tun.EventUp, mtu, v.BatchSize())
	// Output: true 1420 128
}

// Open makes a kernel TUN device and sets up its host side; the stack then
// owns it. It needs CAP_NET_ADMIN.
func ExampleOpen() {
	dev, err := tundev.Open(tundev.Config{
		Name:  "netcore0",
		MTU:   1500,
		Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}, // the kernel's end
	})
	if err != nil {
		log.Fatal(err)
	}
	stack, err := core.New(core.Config{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	if err != nil {
		dev.Close()
		log.Fatal(err)
	}
	defer stack.Close()
	if err := stack.AttachDevice(dev); err != nil {
		log.Fatal(err)
	}
	fmt.Println(dev.Name(), dev.Offloads())
}
