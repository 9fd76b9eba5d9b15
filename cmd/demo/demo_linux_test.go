package main

import (
	"syscall"
	"testing"
)

// newNetNS makes a child process start in a network namespace of its own.
func newNetNS(*testing.T) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
}
