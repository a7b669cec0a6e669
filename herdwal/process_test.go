package herdwal_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/caddy-herd/caddy-herd/herdwal"
)

// holdEnv names the directory a child process of the tests opens and holds
// until it is killed.
const holdEnv = "HERDWAL_TEST_HOLD_DIR"

func TestMain(m *testing.M) {
	if d := os.Getenv(holdEnv); d != "" {
		holdDir(d)
		return
	}
	os.Exit(m.Run())
}

func holdDir(d string) {
	l, _, err := herdwal.Open(d, herdwal.Options{Fsync: herdwal.FsyncAlways}, nil)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	if err := l.Write(makeRecs(1, 3, 3)[0].entry()); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // until the test kills it
	os.Exit(0)
}

func TestLockedByAnotherProcess(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("a process that dies leaves the lock file behind here")
	}
	checkGoroutines(t)
	d := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+d)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		t.Fatalf("child: %q, %v", line, err)
	}

	_, _, err = herdwal.Open(d, herdwal.Options{}, nil)
	want := fmt.Sprintf("herd storage %s: in use by process %d (lock file %s)", d, cmd.Process.Pid, filepath.Join(d, "lock"))
	if !errors.Is(err, herdwal.ErrLocked) || err.Error() != want {
		t.Fatalf("Open: %v\nwant %s, wrapping ErrLocked", err, want)
	}
	if st, err := herdwal.Probe(d, nil); err != nil || st.HeldBy != fmt.Sprint(cmd.Process.Pid) || st.Empty {
		t.Errorf("Probe: %+v, %v", st, err)
	}

	// A process that dies, however it dies, lets go of the lock.
	cmd.Process.Kill()
	cmd.Wait()
	var got restored
	l, r, err := herdwal.Open(d, herdwal.Options{}, got.restore)
	if err != nil {
		t.Fatalf("Open after the holder died: %v", err)
	}
	defer l.Close()
	// The machine did not reboot, where it can tell.
	_, noBootID := os.Stat("/proc/sys/kernel/random/boot_id")
	if r.Clean || r.Unsynced != (noBootID != nil) || len(got.recs) != 1 {
		t.Errorf("recovery %+v with %d records: want not clean, synced unless the boot id is unknown, 1 record", r, len(got.recs))
	}
}
