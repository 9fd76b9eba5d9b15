//go:build !linux && !darwin && !freebsd && !openbsd && !windows

package tundev

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.zx2c4.com/wireguard/tun"
)

// readHeadroom is the room a read leaves in front of each packet.
const readHeadroom = 0

// createTUN fails: wireguard-go has no kernel TUN for this system.
func createTUN(Config) (tun.Device, error) {
	return nil, fmt.Errorf("no kernel TUN on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

// isClosedErr reports whether err is a device read or write on a closed
// device.
func isClosedErr(err error) bool { return errors.Is(err, os.ErrClosed) }
