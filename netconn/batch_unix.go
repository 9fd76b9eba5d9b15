//go:build unix

package netconn

import "syscall"

// msgTrunc is the Message.Flags bit ReadBatch sets on a datagram that did
// not fit its buffers: the system's MSG_TRUNC, as recvmmsg sets it.
const msgTrunc = syscall.MSG_TRUNC
