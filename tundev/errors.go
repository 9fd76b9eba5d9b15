package tundev

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/netcore-go/netcore/core"
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

// errBuffers is a read's answer to no buffers, or fewer sizes than
// buffers: the caller's mistake, which matches core.ErrInvalid (and
// syscall.EINVAL), not a close.
var errBuffers = fmt.Errorf("tundev: read: no buffers, or fewer sizes than buffers: %w", core.ErrInvalid)

// checkBufs reports errBuffers unless there are buffers and a size for
// each.
func checkBufs(bufs [][]byte, sizes []int) error {
	if len(bufs) == 0 || len(sizes) < len(bufs) {
		return errBuffers
	}
	return nil
}

// deviceErr is err as the tun.Device side returns it: a close (the
// Virtual's, or its stack's) becomes ErrClosed, which wireguard-go takes for
// the device going away (it matches os.ErrClosed); anything else, such as
// a caller's mistake, passes through as it is.
func deviceErr(err error) error {
	if err != nil && errors.Is(err, net.ErrClosed) {
		return ErrClosed
	}
	return err
}

// errVirtio is a read whose virtio-net header does not match its packet;
// the packet is dropped and counted.
var errVirtio = errors.New("tundev: read: packet does not match its virtio-net header")
