//go:build unix && !aix && !solaris && !illumos

package herdwal

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes flock(2) on name. The kernel releases it when the process
// dies, however it dies, so a lock file left behind never blocks a restart.
func lockFile(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("locking %s: %w", name, ErrLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", name, err)
	}
	return osFile{f}, nil
}
