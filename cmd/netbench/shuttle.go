package main

import (
	"sync"

	"golang.zx2c4.com/wireguard/tun"
)

// shuttleOffset is the headroom the shuttle leaves in front of each packet,
// as wireguard-go does for its own header.
const shuttleOffset = 16

// shuttle moves batches from one tun.Device's Read to another's Write until
// either fails (they do once closed): a WireGuard tunnel minus the crypto.
func shuttle(from, to tun.Device) {
	bufs := make([][]byte, max(1, from.BatchSize()))
	for i := range bufs {
		bufs[i] = make([]byte, shuttleOffset+65535)
	}
	sizes := make([]int, len(bufs))
	out := make([][]byte, len(bufs))
	for {
		n, err := from.Read(bufs, sizes, shuttleOffset)
		for i := range n {
			out[i] = bufs[i][:shuttleOffset+sizes[i]]
		}
		if n > 0 {
			if _, werr := to.Write(out[:n], shuttleOffset); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// joinShuttle joins two tun.Devices with a shuttle each way; the returned
// func waits for both shuttles, which end when a device is closed.
func joinShuttle(a, b tun.Device) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() { shuttle(a, b) })
	wg.Go(func() { shuttle(b, a) })
	return wg.Wait
}
