package tundev

import (
	"errors"
	"fmt"
	"os"

	"golang.zx2c4.com/wireguard/tun"
)

// readHeadroom is the room a read leaves in front of each packet: none for
// Wintun.
const readHeadroom = 0

// createTUN creates a Wintun interface as cfg says. There are no offloads
// to turn off, and no file to adopt.
func createTUN(cfg Config) (tun.Device, error) {
	if cfg.File != nil {
		return nil, fmt.Errorf("Config.File: Wintun has no device file: %w", errors.ErrUnsupported)
	}
	name := cfg.Name
	if name == "" {
		name = "netcore"
	}
	return tun.CreateTUN(name, cfg.MTU)
}

// isClosedErr reports whether err is a device read or write on a closed
// device.
func isClosedErr(err error) bool { return errors.Is(err, os.ErrClosed) }
