// Command demo shows netcore end to end on its own: two userspace TCP/IP
// stacks, joined by an encrypted WireGuard tunnel (wireguard-go over
// 127.0.0.1 UDP), serve and fetch HTTP by name, with DNS answered through
// the stacks themselves. No root, no flags:
//
//	go run ./cmd/demo
//
// Flags:
//
//	-mode wg    the default: stacks A and B joined by WireGuard
//	-mode pipe  the same on an in-memory pipe, without WireGuard
//	-mode tun   (root, Linux) a real TUN device; the host kernel fetches from netcore
//	-mode proxy (root, Linux) forwarding mode: a network namespace routed through a
//	            TUN into a forwarding stack whose handler dials every flow again
//	            with Go's net (a tun2socks); clients there reach the host's loopback
//	-serve      with -mode tun or proxy: after the fetches, keep serving until Ctrl-C
//	            (without it the demo ends, and the interface goes away)
//	-size N     bytes to download (default 256MiB; units B, KiB, MiB, GiB)
//	-pcap FILE  write stack A's packets (-mode tun: netcore's) to FILE
//	            (tshark -r FILE reads it)
//
// The closing table counts each stack's packets and the TCP retransmits
// (from Netstack.Stats), then shows the serving connection's TCP info at
// the end (TCPConn.Info: RTT, RTO, congestion window, retransmits); the
// demo prints what they mean under it. Ctrl-C stops the demo: under
// -serve that is the normal end (exit status 0), and the stack's final
// figures follow; otherwise it is 130.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
)

// options are the demo's flags.
type options struct {
	mode  string
	size  int64
	pcap  string
	serve bool
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err = run(ctx, opts, os.Stdout)
	switch {
	case err != nil && ctx.Err() != nil:
		if isTerminal(os.Stdout) {
			fmt.Println() // end the line the ^C was echoed on
		}
		fmt.Fprintln(os.Stderr, "demo interrupted")
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, errOut io.Writer) (options, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var o options
	size := sizeFlag(256 << 20)
	fs.StringVar(&o.mode, "mode", "wg", "wg, pipe, tun or proxy")
	fs.Var(&size, "size", "bytes to download (units B, KiB, MiB, GiB)")
	fs.StringVar(&o.pcap, "pcap", "", "write stack A's packets (-mode tun: netcore's) to this pcap file")
	fs.BoolVar(&o.serve, "serve", false, "with -mode tun: after the fetches, serve until Ctrl-C")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.size = int64(size)
	return o, nil
}

// run is the demo's main path, writing its report to out.
func run(ctx context.Context, o options, out io.Writer) error {
	r := &reporter{out: out, progress: isTerminal(out)}
	switch o.mode {
	case "wg", "pipe":
		return runTwoStacks(ctx, o, r)
	case "tun":
		return runTUN(ctx, o, r)
	case "proxy":
		return runProxy(ctx, o, r)
	}
	return fmt.Errorf("unknown -mode %q (want wg, pipe, tun or proxy)", o.mode)
}
