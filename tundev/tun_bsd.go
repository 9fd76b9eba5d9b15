//go:build darwin || freebsd || openbsd

package tundev

import (
	"errors"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// readHeadroom is the room a read leaves in front of each packet: the BSDs'
// tun puts the packet's address family (4 bytes) there.
const readHeadroom = 4

// createTUN opens the device as cfg says. There are no offloads to turn
// off.
func createTUN(cfg Config) (tun.Device, error) {
	if cfg.File != nil {
		return tun.CreateTUNFromFile(cfg.File, cfg.MTU)
	}
	name := cfg.Name
	if name == "" {
		name = kernelPicksName()
	}
	return tun.CreateTUN(name, cfg.MTU)
}

// kernelPicksName is the name that lets the kernel pick the interface.
func kernelPicksName() string {
	switch runtime.GOOS {
	case "darwin":
		return "utun"
	case "openbsd":
		return "tun"
	}
	return ""
}

// isClosedErr reports whether err is a device read or write on a closed
// device.
func isClosedErr(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, unix.EBADF)
}
