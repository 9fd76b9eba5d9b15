//go:build unix

package netconn_test

import "syscall"

// wantTrunc is the Flags bit ReadBatch sets on a truncated datagram.
const wantTrunc = syscall.MSG_TRUNC
