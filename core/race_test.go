package core_test

import "github.com/netcore-go/netcore/internal/testnet"

// raceEnabled reports whether the race detector is on: the allocation
// tests skip under it (.ci/run runs them without -race).
const raceEnabled = testnet.RaceEnabled
