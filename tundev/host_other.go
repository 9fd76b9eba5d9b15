//go:build !linux

package tundev

import (
	"errors"
	"fmt"
	"runtime"
)

// checkHostSetup fails if cfg asks for the host-side set-up, which is
// Linux-only (netlink); it is checked before a device is made.
func checkHostSetup(cfg Config) error {
	if !cfg.Up && len(cfg.Addrs) == 0 && len(cfg.Routes) == 0 {
		return nil
	}
	return fmt.Errorf("host set-up (Config.Up, Addrs, Routes) is Linux-only; on %s set up the interface with the system's tools: %w", runtime.GOOS, errors.ErrUnsupported)
}

// setupHost has nothing to do: checkHostSetup let only a config without
// host set-up through.
func setupHost(string, Config) error { return nil }
