//go:build amd64 || arm64

package herdstore

// prefetch asks the CPU to start loading the cache line at addr. It never
// faults and never waits for the load.
//
//go:noescape
func prefetch(addr uintptr)
