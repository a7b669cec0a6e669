//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly) || herdstore_heapchunks

package herdstore

// newChunk takes n bytes from Go's heap where anonymous mappings are not
// wired up: records are still written over in place, but the chunks count
// towards the collector's goal. The herdstore_heapchunks build tag chooses it
// everywhere, so that the race detector, which does not watch mapped memory,
// sees every access to records.
func newChunk(n int) []byte {
	return make([]byte, n)
}

func freeChunk([]byte) {}
