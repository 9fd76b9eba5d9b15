//go:build !linux

package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

// runProxy explains that -mode proxy is Linux-only: it makes a network
// namespace and routes it through a TUN.
func runProxy(context.Context, options, *reporter) error {
	return fmt.Errorf("-mode proxy is Linux-only (it routes a network namespace through a TUN); on %s use -mode wg (the default) or -mode pipe: %w", runtime.GOOS, errors.ErrUnsupported)
}
