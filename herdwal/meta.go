package herdwal

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Names of the directory's meta file and of files being written.
const (
	metaName  = "meta"
	tmpSuffix = ".tmp"
)

// metaHeader is the first line of meta, before the version.
const metaHeader = "herd storage "

// maxMetaBytes bounds what is read of meta, so that a file that is not one
// cannot make Open read much.
const maxMetaBytes = 4096

// epochRandomBytes is the size of a drawn epoch: 64 bits make two servers'
// epochs differ for as long as any herd runs.
const epochRandomBytes = 8

// newEpoch draws an epoch: 16 hex digits.
func newEpoch() string {
	var b [epochRandomBytes]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return hex.EncodeToString(b[:])
}

// checkEpoch checks a directory's epoch: it is a word of meta's text and is
// stored with a one-byte length.
func checkEpoch(epoch string) error {
	if epoch == "" || len(epoch) > maxShortBytes {
		return fmt.Errorf("epoch %q: must be 1 to %d bytes", epoch, maxShortBytes)
	}
	for i := 0; i < len(epoch); i++ {
		if c := epoch[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("epoch %q: must be printable ASCII without spaces", epoch)
		}
	}
	return nil
}

func metaText(epoch string) string {
	return fmt.Sprintf("%s%d\nepoch %s\n", metaHeader, formatVersion, epoch)
}

// readMeta reads the epoch of dir from its meta file. A meta of another
// version, or one that cannot be read, is an error: this server must not
// guess at data another version wrote.
func readMeta(fsys FS, dir string) (string, int64, error) {
	name := filepath.Join(dir, metaName)
	f, err := fsys.OpenFile(name, os.O_RDONLY)
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetaBytes+1))
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", name, err)
	}
	text := string(b)
	first, rest, _ := strings.Cut(text, "\n")
	version, ok := strings.CutPrefix(first, metaHeader)
	if !ok || len(b) > maxMetaBytes {
		return "", 0, fmt.Errorf("reading %s: not a herd storage meta file (it should begin %q)", name, metaHeader+"1")
	}
	if version != fmt.Sprint(formatVersion) {
		return "", 0, fmt.Errorf("reading %s: herd storage version %q, but this server reads only version %d", name, version, formatVersion)
	}
	epoch, ok := strings.CutPrefix(rest, "epoch ")
	epoch, ok2 := strings.CutSuffix(epoch, "\n")
	if !ok || !ok2 || checkEpoch(epoch) != nil {
		return "", 0, fmt.Errorf("reading %s: damaged: want %q, have %q", name, metaText("<epoch>"), text)
	}
	return epoch, int64(len(b)), nil
}

// writeMeta writes the meta file of a new directory, atomically: a crash
// leaves either none or a whole one (and maybe meta.tmp, which Open removes).
func writeMeta(fsys FS, dir, epoch string) (int64, error) {
	name := filepath.Join(dir, metaName)
	tmp := name + tmpSuffix
	text := metaText(epoch)
	if err := writeFileSynced(fsys, tmp, []byte(text)); err != nil {
		return 0, err
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return 0, fmt.Errorf("renaming %s: %w", tmp, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return 0, fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return int64(len(text)), nil
}

// writeFileSynced creates name with content b and fsyncs it.
func writeFileSynced(fsys FS, name string, b []byte) error {
	f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", name, err)
	}
	return nil
}
