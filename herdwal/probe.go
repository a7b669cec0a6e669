package herdwal

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// DirState is what Probe found in a directory.
type DirState struct {
	// Exists is set when the directory exists.
	Exists bool
	// Empty is set when it holds no herd data: no meta, segments or
	// snapshots. A lock file alone counts as empty.
	Empty bool
	// HeldBy is the pid written in the lock file when another open file
	// holds the lock ("unknown" when it holds no pid); "" when the lock is
	// free.
	HeldBy string
}

// Probe reports what dir holds without changing it: a server checks its
// directory with it when a config is provisioned, before it opens it at
// start. It creates and writes nothing; it may open the lock file and try
// the lock, without keeping it. A nil fsys is the operating system's.
func Probe(dir string, fsys FS) (DirState, error) {
	if fsys == nil {
		fsys = OSFS()
	}
	dir = filepath.Clean(dir)
	names, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return DirState{Empty: true}, nil
	}
	if err != nil {
		return DirState{}, fmt.Errorf("probing herd storage %s: %w", dir, err)
	}
	st := DirState{Exists: true, Empty: true}
	hasLock := false
	for _, name := range names {
		switch {
		case name == lockName:
			hasLock = true
		case strings.HasSuffix(name, tmpSuffix):
		case name == metaName:
			st.Empty = false
		default:
			if _, ok := parseNumbered(name, segmentPrefix); ok {
				st.Empty = false
			} else if _, ok := parseNumbered(name, snapshotPrefix); ok {
				st.Empty = false
			}
		}
	}
	if !hasLock {
		return st, nil
	}
	name := filepath.Join(dir, lockName)
	f, err := fsys.Lock(name)
	if err == nil {
		if err := f.Close(); err != nil {
			return DirState{}, fmt.Errorf("probing herd storage %s: releasing %s: %w", dir, name, err)
		}
		return st, nil
	}
	if !errors.Is(err, ErrLocked) {
		return DirState{}, fmt.Errorf("probing herd storage %s: %w", dir, err)
	}
	st.HeldBy = readPID(fsys, name)
	if st.HeldBy == "" {
		st.HeldBy = "unknown"
	}
	return st, nil
}

// Err returns the error Open would return for a directory held by another
// process (wrapping ErrLocked), or nil when the lock is free.
func (s DirState) Err(dir string) error {
	if s.HeldBy == "" {
		return nil
	}
	pid := s.HeldBy
	if pid == "unknown" {
		pid = ""
	}
	return &lockedError{dir: filepath.Clean(dir), pid: pid}
}
