package tundev

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// readHeadroom is the room a read leaves in front of each packet: none on
// Linux (wireguard-go reads the virtio-net header into a buffer of its own).
const readHeadroom = 0

// createTUN opens the device as cfg says.
func createTUN(cfg Config) (tun.Device, error) {
	if cfg.File != nil {
		return tun.CreateTUNFromFile(cfg.File, cfg.MTU)
	}
	if !cfg.DisableOffloads {
		return tun.CreateTUN(cfg.Name, cfg.MTU)
	}
	f, err := openPlainTUN(cfg.Name)
	if err != nil {
		return nil, err
	}
	dev, err := tun.CreateTUNFromFile(f, cfg.MTU)
	if err != nil {
		f.Close()
	}
	return dev, err
}

// openPlainTUN opens /dev/net/tun without IFF_VNET_HDR, as tun.CreateTUN
// does with it.
func openPlainTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), nil
}

// isClosedErr reports whether err is a device read or write on a closed
// device.
func isClosedErr(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, unix.EBADFD) || errors.Is(err, unix.EBADF)
}
