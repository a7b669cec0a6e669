// Package crashfs is a file system in memory that models a power cut, for
// testing herdwal. A file's durable content is what it held at its last Sync
// (a Truncate too becomes durable only then), and a name created, renamed or
// removed becomes durable only when its directory is synced. Crash returns
// the file system as a power cut would leave it: only durable names, each
// with its durable content.
//
// Directories themselves are durable as soon as they are made, and locks
// work like flock(2): held by an open file, released when it is closed and
// by a crash.
package crashfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/caddy-herd/caddy-herd/herdwal"
)

// Op names an operation of the file system, for a Hook.
type Op string

// The operations a Hook sees.
const (
	OpMkdir    Op = "mkdir"
	OpReadDir  Op = "readdir"
	OpOpen     Op = "open"
	OpRemove   Op = "remove"
	OpRename   Op = "rename"
	OpSyncDir  Op = "syncdir"
	OpLock     Op = "lock"
	OpRead     Op = "read"
	OpWrite    Op = "write"
	OpSync     Op = "sync"
	OpTruncate Op = "truncate"
	OpClose    Op = "close"
)

// Event is one operation about to be done: on Name, and for OpRename to
// NewName.
type Event struct {
	Op      Op
	Name    string
	NewName string
}

// A Hook is called before every operation, with no lock of the file system
// held, so it may call Crash. An error it returns fails the operation; a
// failed OpWrite still writes the first half of its bytes, as a short write
// does.
type Hook func(Event) error

// FS is the file system. It implements herdwal.FS and is safe for
// concurrent use.
type FS struct {
	mu   sync.Mutex
	dirs map[string]*dir
	hook Hook
}

var _ herdwal.FS = (*FS)(nil)

type dir struct {
	live    map[string]*inode
	durable map[string]*inode
}

type inode struct {
	data    []byte
	durable []byte
	// shared is set while data's memory holds durable's: data is then
	// copied before any write inside durable's length.
	shared bool
	locked bool
}

// New returns an empty file system.
func New() *FS {
	return &FS{dirs: map[string]*dir{}}
}

// SetHook sets the hook called before every operation; nil removes it.
func (f *FS) SetHook(h Hook) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

func (f *FS) before(e Event) error {
	f.mu.Lock()
	h := f.hook
	f.mu.Unlock()
	if h == nil {
		return nil
	}
	return h(e)
}

// Crash returns the file system as a power cut now would leave it: the names
// made durable by syncing their directories, each with the content its file
// held at its last Sync, and no locks. f itself goes on as it was.
func (f *FS) Crash() *FS {
	return f.crash(nil)
}

// CrashTorn is Crash, except that a file whose unsynced change is an append
// keeps a random part of what was appended, as when the disk wrote some
// pages before the power went: a torn tail.
func (f *FS) CrashTorn(r *rand.Rand) *FS {
	return f.crash(r)
}

func (f *FS) crash(r *rand.Rand) *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := New()
	inodes := map[*inode]*inode{}
	for _, path := range slices.Sorted(maps.Keys(f.dirs)) {
		d := f.dirs[path]
		nd := &dir{live: map[string]*inode{}, durable: map[string]*inode{}}
		for _, name := range slices.Sorted(maps.Keys(d.durable)) {
			old := d.durable[name]
			ino, ok := inodes[old]
			if !ok {
				content := old.durable
				if r != nil && len(old.data) > len(content) && bytes.HasPrefix(old.data, content) {
					content = old.data[:len(content)+r.IntN(len(old.data)-len(content)+1)]
				}
				content = bytes.Clone(content)
				ino = &inode{data: content, durable: content[:len(content):len(content)], shared: true}
				inodes[old] = ino
			}
			nd.live[name], nd.durable[name] = ino, ino
		}
		out.dirs[path] = nd
	}
	return out
}

// ReadFile returns the content of name as it is now, synced or not.
func (f *FS) ReadFile(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ino, err := f.lookup("readfile", name)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(ino.data), nil
}

// WriteFile makes name hold data, durably: content and name.
func (f *FS) WriteFile(name string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = filepath.Clean(name)
	d := f.dirs[filepath.Dir(name)]
	if d == nil {
		return &fs.PathError{Op: "writefile", Path: name, Err: fs.ErrNotExist}
	}
	content := bytes.Clone(data)
	ino := &inode{data: content, durable: content[:len(content):len(content)], shared: true}
	d.live[filepath.Base(name)] = ino
	d.durable[filepath.Base(name)] = ino
	return nil
}

func (f *FS) lookup(op, name string) (*dir, *inode, error) {
	name = filepath.Clean(name)
	d := f.dirs[filepath.Dir(name)]
	if d == nil {
		return nil, nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	ino := d.live[filepath.Base(name)]
	if ino == nil {
		return d, nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return d, ino, nil
}

// MkdirAll makes dir and its missing parents.
func (f *FS) MkdirAll(path string) error {
	if err := f.before(Event{Op: OpMkdir, Name: path}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	path = filepath.Clean(path)
	for p := path; ; p = filepath.Dir(p) {
		if parent := f.dirs[filepath.Dir(p)]; parent != nil && parent.live[filepath.Base(p)] != nil {
			return &fs.PathError{Op: "mkdir", Path: p, Err: errors.New("a file has that name")}
		}
		if f.dirs[p] == nil {
			f.dirs[p] = &dir{live: map[string]*inode{}, durable: map[string]*inode{}}
		}
		if filepath.Dir(p) == p {
			break
		}
	}
	return nil
}

// ReadDir returns the sorted names of the files and directories in path.
func (f *FS) ReadDir(path string) ([]string, error) {
	if err := f.before(Event{Op: OpReadDir, Name: path}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	path = filepath.Clean(path)
	d := f.dirs[path]
	if d == nil {
		return nil, &fs.PathError{Op: "readdir", Path: path, Err: fs.ErrNotExist}
	}
	names := slices.Collect(maps.Keys(d.live))
	for p := range f.dirs {
		if p != path && filepath.Dir(p) == path {
			names = append(names, filepath.Base(p))
		}
	}
	slices.Sort(names)
	return names, nil
}

// OpenFile opens name with the flags of os.OpenFile: an access mode, and
// O_CREATE, O_EXCL and O_TRUNC.
func (f *FS) OpenFile(name string, flag int) (herdwal.File, error) {
	if err := f.before(Event{Op: OpOpen, Name: name}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open(name, flag)
}

func (f *FS) open(name string, flag int) (*file, error) {
	if flag&^(os.O_RDONLY|os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_TRUNC) != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("unsupported flags")}
	}
	name = filepath.Clean(name)
	if f.dirs[name] != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("is a directory")}
	}
	d, ino, err := f.lookup("open", name)
	if d == nil {
		return nil, err
	}
	switch {
	case ino == nil && flag&os.O_CREATE == 0:
		return nil, err
	case ino == nil:
		ino = &inode{}
		d.live[filepath.Base(name)] = ino
	case flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	}
	access := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	fl := &file{fs: f, ino: ino, name: name, read: access != os.O_WRONLY, write: access != os.O_RDONLY}
	if flag&os.O_TRUNC != 0 && fl.write {
		ino.truncate(0)
	}
	return fl, nil
}

// Remove removes the file name.
func (f *FS) Remove(name string) error {
	if err := f.before(Event{Op: OpRemove, Name: name}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, _, err := f.lookup("remove", name)
	if err != nil {
		return err
	}
	delete(d.live, filepath.Base(name))
	return nil
}

// Rename renames the file oldname to newname, replacing newname.
func (f *FS) Rename(oldname, newname string) error {
	if err := f.before(Event{Op: OpRename, Name: oldname, NewName: newname}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ino, err := f.lookup("rename", oldname)
	if err != nil {
		return err
	}
	nd := f.dirs[filepath.Dir(filepath.Clean(newname))]
	if nd == nil {
		return &fs.PathError{Op: "rename", Path: newname, Err: fs.ErrNotExist}
	}
	delete(d.live, filepath.Base(oldname))
	nd.live[filepath.Base(newname)] = ino
	return nil
}

// SyncDir makes the names of path durable as they are now.
func (f *FS) SyncDir(path string) error {
	if err := f.before(Event{Op: OpSyncDir, Name: path}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.dirs[filepath.Clean(path)]
	if d == nil {
		return &fs.PathError{Op: "syncdir", Path: path, Err: fs.ErrNotExist}
	}
	d.durable = maps.Clone(d.live)
	return nil
}

// Lock opens name for writing, creating it if needed, and locks it; while an
// open file holds its lock, Lock fails with an error wrapping
// herdwal.ErrLocked.
func (f *FS) Lock(name string) (herdwal.File, error) {
	if err := f.before(Event{Op: OpLock, Name: name}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, err := f.open(name, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, err
	}
	if fl.ino.locked {
		return nil, fmt.Errorf("locking %s: %w", name, herdwal.ErrLocked)
	}
	fl.ino.locked, fl.lock = true, true
	return fl, nil
}

// own makes data's memory the inode's own before a change inside durable.
func (ino *inode) own() {
	if ino.shared {
		ino.data = bytes.Clone(ino.data)
		ino.shared = false
	}
}

func (ino *inode) truncate(size int64) {
	if size < int64(len(ino.data)) {
		ino.own()
		ino.data = ino.data[:size]
		return
	}
	ino.data = append(ino.data, make([]byte, size-int64(len(ino.data)))...)
}

type file struct {
	fs     *FS
	ino    *inode
	name   string
	off    int64
	read   bool
	write  bool
	lock   bool
	closed bool
}

func (fl *file) check(op string, want bool) error {
	if fl.closed {
		return &fs.PathError{Op: op, Path: fl.name, Err: fs.ErrClosed}
	}
	if !want {
		return &fs.PathError{Op: op, Path: fl.name, Err: errors.New("bad file descriptor")}
	}
	return nil
}

func (fl *file) Read(p []byte) (int, error) {
	if err := fl.fs.before(Event{Op: OpRead, Name: fl.name}); err != nil {
		return 0, err
	}
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if err := fl.check("read", fl.read); err != nil {
		return 0, err
	}
	if fl.off >= int64(len(fl.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, fl.ino.data[fl.off:])
	fl.off += int64(n)
	return n, nil
}

func (fl *file) Write(p []byte) (int, error) {
	hookErr := fl.fs.before(Event{Op: OpWrite, Name: fl.name})
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if err := fl.check("write", fl.write); err != nil {
		return 0, err
	}
	if hookErr != nil {
		p = p[:len(p)/2]
	}
	ino := fl.ino
	if fl.off > int64(len(ino.data)) {
		ino.truncate(fl.off)
	}
	if fl.off < int64(len(ino.durable)) {
		ino.own()
	}
	end := fl.off + int64(len(p))
	if end > int64(len(ino.data)) {
		ino.data = append(ino.data[:fl.off], p...)
	} else {
		copy(ino.data[fl.off:], p)
	}
	fl.off = end
	if hookErr != nil {
		return len(p), hookErr
	}
	return len(p), nil
}

func (fl *file) Sync() error {
	if err := fl.fs.before(Event{Op: OpSync, Name: fl.name}); err != nil {
		return err
	}
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if err := fl.check("sync", true); err != nil {
		return err
	}
	ino := fl.ino
	ino.durable = ino.data[:len(ino.data):len(ino.data)]
	ino.shared = true
	return nil
}

func (fl *file) Truncate(size int64) error {
	if err := fl.fs.before(Event{Op: OpTruncate, Name: fl.name}); err != nil {
		return err
	}
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if err := fl.check("truncate", fl.write); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: fl.name, Err: errors.New("negative size")}
	}
	fl.ino.truncate(size)
	return nil
}

func (fl *file) Size() (int64, error) {
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if err := fl.check("stat", true); err != nil {
		return 0, err
	}
	return int64(len(fl.ino.data)), nil
}

func (fl *file) Close() error {
	if err := fl.fs.before(Event{Op: OpClose, Name: fl.name}); err != nil {
		return err
	}
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if err := fl.check("close", true); err != nil {
		return err
	}
	fl.closed = true
	if fl.lock {
		fl.ino.locked = false
	}
	return nil
}
