// Package gso is the packet arithmetic of TCP segmentation offload: the
// description of a packet a stack hands a device with host GSO (Options),
// the number of wire packets it makes (Options.Segments), and the cutting
// of a TCP super-segment into wire-sized segments with their own headers
// and checksums, all at once (Split) or over several reads (Splitter).
//
// It is pure []byte code with no engine: a device author imports it to
// take super-segments from a netcore stack (core.OffloadDevice hands them
// with Options) without importing the engine's internals.
package gso
