package tundev

import (
	"net"
	"os"
)

// ErrClosed is returned by every method of a closed device. It matches both
// net.ErrClosed (the core.Device convention) and os.ErrClosed (the
// tun.Device convention, which wireguard-go checks for) with errors.Is.
var ErrClosed error = closedError{}

type closedError struct{}

func (closedError) Error() string { return "tundev: device closed" }

// Is reports whether target is net.ErrClosed or os.ErrClosed.
func (closedError) Is(target error) bool {
	return target == net.ErrClosed || target == os.ErrClosed
}
