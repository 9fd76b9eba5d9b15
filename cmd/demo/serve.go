package main

import (
	"context"
	"net/http"
	"time"

	"github.com/netcore-go/netcore/core"
)

// checkFromHost is the end of -mode tun: the host kernel's own TCP/IP
// fetches the greeting and -size bytes from netcore at base, and the table
// follows. Without -serve the demo then ends, and the interface goes with
// it; with -serve it keeps serving until Ctrl-C, for curl and the like.
func checkFromHost(ctx context.Context, o options, r *reporter, base string, ns *core.Netstack, ln *lastConn) error {
	// A Transport of its own: no proxy from the environment, and no
	// timeout on a large body, only on the response's start.
	client := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 10 * time.Second}}
	defer client.CloseIdleConnections()
	if err := getHello(ctx, client, "host kernel", base, r); err != nil {
		return err
	}
	res, err := download(ctx, client, base, o.size, r)
	if err != nil {
		return err
	}
	res.stacks = []stackStats{{"netcore", ns.Stats()}}
	res.server, res.conn = "netcore", ln.info()
	r.table(res)
	if !o.serve {
		r.step("done; the interface goes away now (with -serve it stays up for curl %s/)", base)
		return nil
	}
	r.step("serving until Ctrl-C: try curl %s/ from another shell", base)
	<-ctx.Done()
	r.interrupted("stopped serving; the interface goes away now")
	ns.Close() // Run is closing it already; wait for the last figures
	st := ns.Stats()
	r.step("final figures: %d connections accepted, %d packets in, %d out, %d TCP segments retransmitted",
		st.TCPPassiveOpens, st.PacketsIn, st.PacketsOut, st.TCPRetransmits)
	return nil
}
