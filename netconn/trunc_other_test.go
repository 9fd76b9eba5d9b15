//go:build !unix

package netconn_test

// wantTrunc is the Flags bit ReadBatch sets on a truncated datagram:
// Linux's MSG_TRUNC where the system has none.
const wantTrunc = 0x20
