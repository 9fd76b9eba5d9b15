//go:build !linux

package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
)

// newNetNS skips: -mode tun is Linux-only (TestDemoTUNUnsupported).
func newNetNS(t *testing.T) *syscall.SysProcAttr {
	t.Skip("-mode tun is Linux-only")
	return nil
}

// TestDemoTUNUnsupported checks that -mode tun says it is Linux-only, with
// an error matching errors.ErrUnsupported.
func TestDemoTUNUnsupported(t *testing.T) {
	o, err := parseFlags([]string{"-mode", "tun"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), o, &bytes.Buffer{})
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "Linux-only") {
		t.Fatalf("-mode tun = %v, want a Linux-only error matching errors.ErrUnsupported", err)
	}
}
