package herdwal

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
)

// mapping is the state of an osFile that preallocate mapped.
type mapping struct {
	mem []byte
	// off is where the next byte goes: everything before it was written.
	off int64
	// released is how much of mem was handed back with MADV_DONTNEED.
	released int64
	// broken is set after a store into mem faulted.
	broken bool
}

func (f *osFile) preallocate(size int64) error {
	if f.m != nil {
		return errors.New("already mapped")
	}
	if size <= 0 || int64(int(size)) != size {
		return fmt.Errorf("preallocating %d bytes: %w", size, errors.ErrUnsupported)
	}
	off, err := f.Seek(0, 1)
	if err != nil {
		return err
	}
	if off >= size {
		return errors.ErrUnsupported
	}
	// Allocated, not merely sized: a store into a hole of a full disk
	// would kill the process with SIGBUS.
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
			return errors.ErrUnsupported
		}
		return fmt.Errorf("allocating %d bytes: %w", size, err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		f.File.Truncate(off)
		return fmt.Errorf("mapping %d bytes: %w", size, err)
	}
	f.m = &mapping{mem: mem, off: off}
	return nil
}

// TryAppend copies p into the mapping if it fits. A page the kernel cannot
// give (an I/O error behind it) faults; the mapping is then given up, and
// the file is written with write(2) from there, which reports the error.
func (f *osFile) TryAppend(p []byte) (ok bool) {
	m := f.m
	if m == nil || m.broken || int64(len(p)) > int64(len(m.mem))-m.off {
		return false
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			m.broken, ok = true, false
		}
	}()
	copy(m.mem[m.off:], p)
	m.off += int64(len(p))
	if m.off-m.released >= 2*mappedBytesKept {
		// Whole pages only: the one being filled stays mapped.
		upTo := (m.off - mappedBytesKept) &^ int64(os.Getpagesize()-1)
		if syscall.Madvise(m.mem[m.released:upTo], syscall.MADV_DONTNEED) == nil {
			m.released = upTo
		}
	}
	return true
}

func (f *osFile) Write(p []byte) (int, error) {
	if f.m == nil {
		return f.File.Write(p)
	}
	if f.TryAppend(p) {
		return len(p), nil
	}
	// Past the mapping, the file grows as with write(2).
	n, err := f.File.WriteAt(p, f.m.off)
	f.m.off += int64(n)
	return n, err
}

func (f *osFile) Size() (int64, error) {
	if f.m != nil {
		return f.m.off, nil
	}
	return f.size()
}

func (f *osFile) Truncate(size int64) error {
	if f.m != nil {
		return errors.New("truncating a mapped file")
	}
	return f.File.Truncate(size)
}

// Close unmaps the file and cuts it to what was written. The cut is not
// fsynced: a power cut before the file system writes it leaves the file
// ending in allocated zeros, which recovery cuts as it does those of a
// process that died, and a rotation does not wait for a third fsync.
func (f *osFile) Close() error {
	if f.m == nil {
		return f.File.Close()
	}
	m := f.m
	f.m = nil
	var errs []error
	if err := syscall.Munmap(m.mem); err != nil {
		errs = append(errs, fmt.Errorf("unmapping: %w", err))
	}
	if err := f.File.Truncate(m.off); err != nil {
		errs = append(errs, fmt.Errorf("cutting to the %d bytes written: %w", m.off, err))
	}
	if err := f.File.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
