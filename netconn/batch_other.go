//go:build !unix

package netconn

// msgTrunc is the Message.Flags bit ReadBatch sets on a datagram that did
// not fit its buffers: Linux's MSG_TRUNC, where the system has none.
const msgTrunc = 0x20
