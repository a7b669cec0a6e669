package herdwal

import "fmt"

// Fsync is a durability level: when Write returns, relative to fsync(2). The
// names are those of Redis's appendfsync, which operators know.
type Fsync int

// The durability levels.
const (
	// FsyncEverySec is the default: Write returns after write(2), and a
	// background goroutine fsyncs about once a second when something was
	// written since the last fsync. A power cut loses about a second of
	// records; a crash of the process alone loses nothing.
	FsyncEverySec Fsync = iota
	// FsyncAlways makes Write return only after its bytes are written and
	// fsynced. Concurrent writers share one fsync (group commit).
	FsyncAlways
	// FsyncOff makes Write return after write(2) and leaves fsync to the
	// operating system. Close, snapshots and new segments are still
	// synced, so the directory stays consistent.
	FsyncOff
)

// ParseFsync parses a durability level as configured: "always", "everysec"
// or "off".
func ParseFsync(s string) (Fsync, error) {
	switch s {
	case "always":
		return FsyncAlways, nil
	case "everysec":
		return FsyncEverySec, nil
	case "off":
		return FsyncOff, nil
	}
	return 0, fmt.Errorf("parsing fsync level %q: want always, everysec or off", s)
}

// String returns the level's configured name.
func (f Fsync) String() string {
	switch f {
	case FsyncAlways:
		return "always"
	case FsyncEverySec:
		return "everysec"
	case FsyncOff:
		return "off"
	}
	return fmt.Sprintf("Fsync(%d)", int(f))
}

func (f Fsync) valid() bool {
	return f == FsyncAlways || f == FsyncEverySec || f == FsyncOff
}
