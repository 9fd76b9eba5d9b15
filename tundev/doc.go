// Package tundev connects netcore stacks to TUN devices, both ways round.
//
// A TUN (Open, Wrap) is a real TUN interface seen from a Netstack (Linux;
// also utun on macOS, tun on the BSDs and Wintun on Windows, where
// wireguard-go has them, without offloads or host set-up): it
// implements core.OffloadDevice on top of wireguard-go's tun.Device, reading
// and writing packets in batches with the kernel's TSO/USO and checksum
// offloads where they are on (wireguard-go splits inbound super-packets and
// coalesces outbound segments). The stack hands it TCP super-segments,
// which it cuts into segments itself, and coalesces the segments it reads,
// so gVisor handles one packet per 64 KiB either way. Open can also set up
// the kernel side of the link: bring it up, add addresses and routes,
// through netlink.
//
// A TAP (OpenTAP, Linux only) is the Ethernet twin of a TUN, for a stack on
// core.MediumEthernet: a kernel TAP interface (bridge it to VMs and
// containers, or move it into a network namespace), opened with
// IFF_VNET_HDR and TSO/checksum offloads where the kernel has them, moving
// frames in batches through the runtime poller.
//
// A Virtual is the opposite: a tun.Device backed by a Netstack, for
// wireguard-go's device.NewDevice. Its tun.Device side returns the stack's
// outbound packets and injects inbound ones; its core.Device side is
// attached to the stack. Once attached, the two sides have no queue and no
// goroutine between them: wireguard-go's Read takes batches straight from
// the stack and its Write hands them straight in (one copy each way).
// Close is safe while traffic flows.
//
// Package tundevtest has channel-backed doubles of both kinds of device for
// tests.
package tundev
