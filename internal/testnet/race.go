//go:build race

package testnet

// RaceEnabled reports whether the race detector is on: it allocates, so
// allocation tests skip under it (.ci/run runs them without -race).
const RaceEnabled = true
