// Package impair is an impaired network link for tests: Linux netem, in
// process, without root. Per direction it drops packets at random or in
// bursts (Gilbert–Elliott), duplicates them, flips bits in them, holds some
// back so that others overtake them, delays them with jitter, and limits
// the rate with a token bucket and a bounded queue, all drawn from a seed so
// that a failing run replays, and counts what it did.
//
// A Link is the engine, on raw packets and independent of netcore's stack:
// Send takes packets, a delivery function gets them when they are due. On
// top of it, Wrap impairs any core.Device, and Join joins two netcore stacks
// as core.JoinPipe does, but through two Links and without offloads:
// packets are wire-sized and fully checksummed, so a corrupted one is
// dropped by the receiving stack's checksum check, as on a real network.
//
// Package core does not import impair.
package impair
