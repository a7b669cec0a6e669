//go:build !unix || aix || solaris || illumos

package herdwal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// lockFile creates name exclusively, where there is no flock(2). Closing the
// returned file removes it; a process that dies leaves it behind, which is
// why the error then says to remove it.
func lockFile(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("locking %s: %w (%w)", name, ErrLocked, errStaleLockPossible)
		}
		return nil, fmt.Errorf("locking %s: %w", name, err)
	}
	return removeOnClose{osFile{f}}, nil
}

type removeOnClose struct {
	osFile
}

func (f removeOnClose) Close() error {
	err := f.osFile.Close()
	if rerr := os.Remove(f.Name()); err == nil {
		err = rerr
	}
	return err
}
