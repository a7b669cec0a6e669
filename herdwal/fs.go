package herdwal

import (
	"io"
	"os"
)

// FS is the file system a log lives on: the operating system's (OSFS), or in
// tests one that forgets what was not synced. Names are paths as
// path/filepath makes them. Errors for a missing file or directory satisfy
// errors.Is(err, fs.ErrNotExist), and for an existing one that O_EXCL
// refused, errors.Is(err, fs.ErrExist).
//
// The permissions are the log's own: directories 0o700 and files 0o600,
// because a log holds where clients are.
type FS interface {
	// MkdirAll makes dir and any missing parents.
	MkdirAll(dir string) error
	// ReadDir returns the names of the entries of dir, sorted.
	ReadDir(dir string) ([]string, error)
	// OpenFile opens name with the os.OpenFile flags flag (O_RDONLY,
	// O_WRONLY or O_RDWR, with O_CREATE, O_EXCL and O_TRUNC).
	OpenFile(name string, flag int) (File, error)
	// Remove removes the file name.
	Remove(name string) error
	// Rename renames oldname to newname, replacing newname if it exists.
	Rename(oldname, newname string) error
	// SyncDir makes the entries of dir (files created, renamed or removed
	// in it) durable.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on the file name, creating the file if
	// needed, without waiting: when another open file holds the lock, the
	// error wraps ErrLocked. The returned file is open for writing, and
	// closing it releases the lock.
	Lock(name string) (File, error)
}

// File is an open file of an FS. Reads and writes are sequential from where
// the last one ended, as with read(2) and write(2).
type File interface {
	io.Reader
	// Write writes all of p or returns an error saying why not; n is how
	// much was written even then.
	io.Writer
	io.Closer
	// Sync makes the file's content durable (fsync).
	Sync() error
	// Truncate changes the file's size; the change is durable at the next
	// Sync.
	Truncate(size int64) error
	// Size returns the file's size.
	Size() (int64, error)
}

// OSFS returns the operating system's file system: a File is an *os.File,
// Write is write(2), Sync is fsync(2), SyncDir fsyncs the directory, and Lock
// is flock(2) where there is one.
func OSFS() FS {
	return osFS{}
}

type osFS struct{}

func (osFS) MkdirAll(dir string) error {
	return os.MkdirAll(dir, 0o700)
}

func (osFS) ReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

func (osFS) OpenFile(name string, flag int) (File, error) {
	f, err := os.OpenFile(name, flag, 0o600)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error {
	return os.Remove(name)
}

func (osFS) Rename(oldname, newname string) error {
	return os.Rename(oldname, newname)
}

func (osFS) SyncDir(dir string) error {
	return syncDir(dir)
}

func (osFS) Lock(name string) (File, error) {
	return lockFile(name)
}

type osFile struct {
	*os.File
}

func (f osFile) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
