//go:build !linux

package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

// runTUN explains that -mode tun is Linux-only: it sets up the host side of
// the TUN (address, link up) through netlink. tundev.Open itself works here,
// without that set-up.
func runTUN(context.Context, options, *reporter) error {
	return fmt.Errorf("-mode tun is Linux-only (it sets up the host side of the TUN through netlink); on %s use -mode wg (the default) or -mode pipe: %w", runtime.GOOS, errors.ErrUnsupported)
}
