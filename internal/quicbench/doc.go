// Package quicbench holds the tests and benchmarks of quic-go over netcore
// (a QUIC stream and an HTTP/3 GET between two netcore stacks, beside the
// same over the kernel's loopback): quic-go is a test-only dependency, so
// this package has no code of its own, and nothing imports it.
package quicbench
