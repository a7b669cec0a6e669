package module

import (
	"fmt"
	"os"
	"testing"
)

// TestMain points Caddy's data directory, where a herd keeps its table by
// default, at a directory of the tests' own: no test writes the user's.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herd-module-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_DATA_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
