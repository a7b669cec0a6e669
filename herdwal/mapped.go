package herdwal

// A segment's writes are what the line protocol waits for before every
// reply, so they go where they cost least: when the file system can, the
// segment is allocated to its full size up front and mapped into memory, and
// a write is a copy into the mapping. The bytes are then in the kernel's page
// cache, as after write(2): a process killed right after loses none of them,
// and fsync(2) of the file makes them durable as it does written ones. What
// a copy saves is the system call, which costs about ten times the copy of a
// record.

// mappedBytesKept bounds how much of the written mapping stays in the
// process's page tables: the pages behind it are released (they stay in the
// page cache, dirty ones still to be written back), so that the mapping
// does not add a segment's size to the server's resident memory.
const mappedBytesKept = 1 << 20

// preallocator is a File that can allocate itself to a size and map it, as a
// segment of OSFS can on Linux.
type preallocator interface {
	// preallocate allocates the file to size bytes and maps them; the
	// file's Write then copies into the mapping while it fits, and Close
	// cuts the file to what was written. It reports errors.ErrUnsupported
	// where the file system cannot, and the file is then as it was.
	preallocate(size int64) error
}

// Appender is a File that can take a write without a system call and
// without failing: a mapped segment of OSFS, or a file in memory. The log
// uses it to write under its lock, where a write(2) that blocks or fails
// could not be.
type Appender interface {
	// TryAppend writes all of p at the end of what was written and
	// reports true, or writes nothing and reports false (p does not fit
	// in the mapping, or the file cannot take it at once); Write then
	// does.
	TryAppend(p []byte) bool
}
