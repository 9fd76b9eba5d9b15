//go:build !linux

package tundev

import (
	"github.com/netcore-go/netcore/core/gso"
	"golang.zx2c4.com/wireguard/tun"
)

// rawReader is Linux's reader of TSO super-segments; elsewhere there is
// none.
type rawReader struct{}

// newRawReader returns nil: only Linux TUNs have offloads.
func newRawReader(tun.Device) *rawReader { return nil }

// read is never called: newRawReader returns nil.
func (*rawReader) read([][]byte, []int, []bool) (int, bool, error) { return 0, false, errVirtio }

// writeOne is never called: newRawReader returns nil.
func (*rawReader) writeOne([]byte) error { return errVirtio }

// writeSuper is never called: newRawReader returns nil.
func (*rawReader) writeSuper([]byte, gso.Options) error { return errVirtio }

// superWhole is false: only Linux TUNs take super-segments.
func superWhole([]byte, gso.Options) bool { return false }

// writeSuperParts is never called: newRawReader returns nil.
func (*rawReader) writeSuperParts([][]byte, gso.Options) error { return errVirtio }

// superWholeParts is false: only Linux TUNs take super-segments.
func superWholeParts([][]byte, gso.Options) bool { return false }
