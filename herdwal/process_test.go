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
	"strconv"
	"testing"

	"github.com/caddy-herd/caddy-herd/herdwal"
)

// holdEnv names the directory a child process of the tests opens and holds
// until it is killed; writesEnv, if set, has it write that many records
// under FsyncOff, in segments of segmentBytesEnv, instead of one under
// FsyncAlways.
const (
	holdEnv         = "HERDWAL_TEST_HOLD_DIR"
	writesEnv       = "HERDWAL_TEST_HOLD_WRITES"
	segmentBytesEnv = "HERDWAL_TEST_HOLD_SEGMENT_BYTES"
)

// writeBatch is how many records the child writes with one Write.
const writeBatch = 50

func TestMain(m *testing.M) {
	if d := os.Getenv(holdEnv); d != "" {
		holdDir(d)
		return
	}
	os.Exit(m.Run())
}

func holdDir(d string) {
	opts, recs := herdwal.Options{Fsync: herdwal.FsyncAlways}, makeRecs(1, 1, 3)
	if n, err := strconv.Atoi(os.Getenv(writesEnv)); err == nil {
		opts.Fsync, recs = herdwal.FsyncOff, makeRecs(1, n, n)
		opts.SegmentBytes, _ = strconv.ParseInt(os.Getenv(segmentBytesEnv), 10, 64)
	}
	l, _, err := herdwal.Open(d, opts, nil)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	for i := 0; i < len(recs); i += writeBatch {
		if err := l.Write(entries(recs[i:min(i+writeBatch, len(recs))]...)); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // until the test kills it
	os.Exit(0)
}

// startHolder starts a child process that opens d, writes and holds it
// until the test kills it, with env added to its environment.
func startHolder(t *testing.T, d string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), holdEnv+"="+d), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	return cmd
}

func TestLockedByAnotherProcess(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("a process that dies leaves the lock file behind here")
	}
	checkGoroutines(t)
	d := t.TempDir()
	cmd := startHolder(t, d)

	_, _, err := herdwal.Open(d, herdwal.Options{}, nil)
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

// TestKilledWithNothingSynced kills a process that wrote under FsyncOff,
// across several segments, and checks that every record it wrote is
// restored with no damage reported: the bytes were in the kernel's hands
// before each Write returned.
func TestKilledWithNothingSynced(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("a process that dies leaves the lock file behind here")
	}
	checkGoroutines(t)
	const segmentBytes = 4 << 20 // three segments
	const n = 100_000
	d := t.TempDir()
	cmd := startHolder(t, d, fmt.Sprint(writesEnv, "=", n), fmt.Sprint(segmentBytesEnv, "=", segmentBytes))
	if segs := segmentFiles(t, d); len(segs) < 2 {
		t.Fatalf("segments %v: want the records to span more than one", segs)
	}

	cmd.Process.Kill()
	cmd.Wait()
	var got restored
	l, r, err := herdwal.Open(d, herdwal.Options{}, got.restore)
	if err != nil {
		t.Fatal(err)
	}
	noDamage(t, r)
	if r.Clean {
		t.Error("recovery says clean after kill -9")
	}
	equalRecs(t, "restored after kill -9", got.recs, makeRecs(1, n, n))
	mustClose(t, l)
}

func segmentFiles(t *testing.T, d string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(d, "log-*"))
	if err != nil {
		t.Fatal(err)
	}
	return segs
}
