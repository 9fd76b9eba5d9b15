//go:build !linux

package tundev

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/netcore-go/netcore/core/gso"
)

// tap is the stub of systems without TAP support: OpenTAP never makes
// one.
type tap struct{}

// errNoTAP is OpenTAP's error where there are no TAP devices.
var errNoTAP = fmt.Errorf("tundev: TAP devices are Linux-only, not on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// OpenTAP fails with an error matching errors.ErrUnsupported: TAP devices
// are Linux-only.
func OpenTAP(Config) (*TAP, error) { return nil, errNoTAP }

// Name returns "".
func (tap) Name() string { return "" }

// MTU returns 0.
func (tap) MTU() int { return 0 }

// Offloads reports false.
func (tap) Offloads() bool { return false }

// WantsGSO implements core.GSODevice.
func (tap) WantsGSO() bool { return false }

// BatchSize implements core.Device.
func (tap) BatchSize() int { return tapBatch }

// Dropped returns 0.
func (tap) Dropped() uint64 { return 0 }

// ReadPackets implements core.Device: it fails with ErrUnsupported.
func (tap) ReadPackets([][]byte, []int) (int, error) { return 0, errNoTAP }

// WritePackets implements core.Device: it fails with ErrUnsupported.
func (tap) WritePackets([][]byte) (int, error) { return 0, errNoTAP }

// WritePacketsGSO implements core.OffloadDevice: it fails with
// ErrUnsupported.
func (tap) WritePacketsGSO([][]byte, []gso.Options) (int, error) { return 0, errNoTAP }

// Close implements core.Device.
func (tap) Close() error { return ErrClosed }
