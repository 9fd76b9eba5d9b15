//go:build !linux

package main

import (
	"errors"

	"github.com/netcore-go/netcore/core/impair"
)

// linuxPath is the Linux reference; it needs Linux's network namespaces.
func linuxPath() lossyPath {
	return lossyPath{
		name:        "linux",
		about:       "the kernel's TCP between two network namespaces (Linux only)",
		unavailable: func() string { return "network namespaces are Linux-only" },
		start:       func(lossyOptions, impair.Config, impair.Config) (*lossyEnv, error) { return nil, errors.ErrUnsupported },
	}
}

// linuxTCPSettings is empty: there is no Linux path.
func linuxTCPSettings(lossyOptions) (string, error) { return "", nil }
