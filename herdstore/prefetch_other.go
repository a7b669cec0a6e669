//go:build !amd64 && !arm64

package herdstore

// prefetch does nothing where the CPU's prefetch instruction is not wired up.
func prefetch(addr uintptr) {}
