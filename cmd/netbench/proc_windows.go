package main

// openFileLimit is the process's open-file limit: 0, unknown, as Windows
// has no such per-process limit on sockets.
func openFileLimit() int { return 0 }
