//go:build (linux || darwin || freebsd || netbsd || openbsd || dragonfly) && !herdstore_heapchunks

package herdstore

import "syscall"

// newChunk maps n bytes of anonymous memory, outside Go's heap: the
// collector neither counts it towards its next goal nor scans it.
func newChunk(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		// As when the heap cannot grow: the process is out of memory.
		panic("herdstore: mapping record memory: " + err.Error())
	}
	return b
}

func freeChunk(b []byte) {
	_ = syscall.Munmap(b)
}
