package herdwal_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// preallocates reports whether the file system of dir allocates files
// (fallocate(2)), as a mapped segment needs.
func preallocates(t *testing.T, dir string) bool {
	t.Helper()
	f, err := os.CreateTemp(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Join(dir, filepath.Base(f.Name())))
	defer f.Close()
	return syscall.Fallocate(int(f.Fd()), 0, 0, 4096) == nil
}
