package module

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-herd/caddy-herd/herdwal"
)

// Storage says where the herd keeps its table on disk and how durably. By
// default the table is kept in `herd/<name>/` under Caddy's data directory,
// written before every AT reply and synced to disk about once a second.
type Storage struct {
	// Dir is the directory that holds the table: a log of the records
	// stored, and snapshots that compact it. A relative path is relative to
	// Caddy's working directory. Default: `herd/<name>` in Caddy's data
	// directory. Two servers cannot share one: the second refuses to start.
	Dir string `json:"dir,omitempty"`

	// Off keeps the table in memory only: a server that stops forgets it and
	// learns it again from its peers.
	Off bool `json:"off,omitempty"`

	// Fsync is when what is written is forced to disk: `always` (before the
	// AT reply; concurrent connections share one fsync), `everysec` (the
	// default: written before the reply, synced about once a second) or
	// `off` (the operating system decides). Whatever the level, a server
	// killed at any moment loses nothing it answered AT: the write happened
	// first; a power cut loses what was not synced.
	Fsync string `json:"fsync,omitempty"`
}

// storagePlan is a config's storage, resolved: its directory made absolute
// and its level parsed.
type storagePlan struct {
	off   bool
	dir   string
	fsync herdwal.Fsync
}

// String says where the table is kept, for logs.
func (p storagePlan) String() string {
	if p.off {
		return "off (memory only)"
	}
	return p.dir + " (fsync " + p.fsync.String() + ")"
}

// plan resolves the storage of the server named name.
func (s *Storage) plan(name string) (storagePlan, error) {
	if s == nil {
		s = &Storage{}
	}
	if s.Off {
		if s.Dir != "" {
			return storagePlan{}, errors.New("a directory has no use with storage off")
		}
		if s.Fsync != "" {
			return storagePlan{}, errors.New("fsync has no effect with storage off")
		}
		return storagePlan{off: true}, nil
	}
	level := herdwal.FsyncEverySec
	if s.Fsync != "" {
		var err error
		if level, err = herdwal.ParseFsync(s.Fsync); err != nil {
			return storagePlan{}, fmt.Errorf("fsync: %w", err)
		}
	}
	dir := s.Dir
	if dir == "" {
		dir = filepath.Join(caddy.AppDataDir(), "herd", pathElement(name))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return storagePlan{}, fmt.Errorf("directory %q: %w", dir, err)
	}
	return storagePlan{dir: abs, fsync: level}, nil
}

// pathElement returns name as one file name: every byte but letters, digits,
// `.`, `-` and `_` is written %XX, and so are the dots of `.` and `..`, so
// that a herd name never reaches outside the herd's data directory.
func pathElement(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if s := b.String(); s != "." && s != ".." {
		return s
	}
	return strings.Repeat("%2E", len(name))
}

// check looks at the directory a config is to use, when it is not the one
// the node already has open: another process must not hold it, and a node
// that already holds a table (a reload) moves it only into an empty one.
func (p storagePlan) check(n *node) error {
	if p.off {
		return nil
	}
	if l := n.log.Load(); l != nil && l.Dir() == p.dir {
		return nil
	}
	st, err := herdwal.Probe(p.dir, nil)
	if err != nil {
		return err
	}
	if st.HeldBy != "" && st.HeldBy != strconv.Itoa(os.Getpid()) && !validating() {
		return fmt.Errorf("herd storage %s: in use by process %s (lock file %s); two servers cannot share a directory", p.dir, st.HeldBy, filepath.Join(p.dir, "lock"))
	}
	if n.started() && !st.Empty {
		return fmt.Errorf("herd storage %s: already holds a table; a reload moves the running table only into an empty directory", p.dir)
	}
	return nil
}

// validating reports whether this process is `caddy validate`, which
// provisions a config without starting it: it opens no directory, so the one
// a running server holds is no reason to call its config invalid, and the
// check before a reload keeps working. Caddy tells its modules nothing of
// it but its command line.
func validating() bool {
	return len(os.Args) > 1 && os.Args[1] == "validate"
}
