package herdwal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrLocked is wrapped by the error of Open when another process (or another
// Log of this one) holds the directory.
var ErrLocked = errors.New("herd storage in use")

// errStaleLockPossible is wrapped, with ErrLocked, by a lock that outlives
// the process that took it (an exclusively created file rather than flock),
// so that the error can say what to do about it.
var errStaleLockPossible = errors.New("the lock file stays behind when its process dies")

// lockName is the lock file of a directory.
const lockName = "lock"

// maxPIDBytes bounds what is read of a lock file: a pid and a newline, with
// room to spare, and no more from a file that is not one.
const maxPIDBytes = 64

// lockedError is the error of a directory held by another process. It names
// the holder, so that an operator can tell which server to stop.
type lockedError struct {
	dir   string
	pid   string
	stale bool
}

func (e *lockedError) Error() string {
	holder := "another process"
	if e.pid != "" {
		holder = "process " + e.pid
	}
	lock := filepath.Join(e.dir, lockName)
	if e.stale {
		return fmt.Sprintf("herd storage %s: in use by %s (lock file %s; if no such process runs, remove the lock file)", e.dir, holder, lock)
	}
	return fmt.Sprintf("herd storage %s: in use by %s (lock file %s)", e.dir, holder, lock)
}

func (e *lockedError) Unwrap() error {
	return ErrLocked
}

// lockDir takes the lock of dir and writes this process's pid in the lock
// file, for the error of the next one that tries.
func lockDir(fsys FS, dir string) (File, int64, error) {
	name := filepath.Join(dir, lockName)
	f, err := fsys.Lock(name)
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, 0, &lockedError{dir: dir, pid: readPID(fsys, name), stale: errors.Is(err, errStaleLockPossible)}
		}
		return nil, 0, fmt.Errorf("locking herd storage %s: %w", dir, err)
	}
	pid := strconv.Itoa(os.Getpid()) + "\n"
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("writing lock file %s: %w", name, err)
	}
	if _, err := io.WriteString(f, pid); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("writing lock file %s: %w", name, err)
	}
	return f, int64(len(pid)), nil
}

// readPID returns the pid written in a lock file, or "" when there is none
// to read (its holder may not have written it yet).
func readPID(fsys FS, name string) string {
	f, err := fsys.OpenFile(name, os.O_RDONLY)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPIDBytes))
	if err != nil {
		return ""
	}
	pid := strings.TrimSpace(string(b))
	if _, err := strconv.ParseUint(pid, 10, 64); err != nil {
		return ""
	}
	return pid
}
