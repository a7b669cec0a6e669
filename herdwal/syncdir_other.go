//go:build !windows

package herdwal

import "os"

// syncDir fsyncs a directory, which is what makes a file created, renamed or
// removed in it survive a power cut.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
