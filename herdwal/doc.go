// Package herdwal makes a herd server's client table durable: an append-only
// log of records, compacted by snapshots, in a directory of its own.
//
// A server encodes each record it stores with AppendRecord and hands a batch
// to Log.Write, which many connections call at once: their batches are
// group-committed, one write(2) (and under FsyncAlways one fsync) for all
// the batches that arrived while the previous write was under way. At start,
// Open reads the directory back, calling a function for every record, and
// cuts off whatever a crash left half-written.
//
// # Directory
//
// A directory holds:
//
//   - lock: the lock file. Open holds an exclusive lock on it (flock(2)
//     where there is one, else the file's exclusive creation) for as long as
//     the log is open, and writes its pid and a newline in it, for the error
//     of another process that tries.
//   - meta: "herd storage 1\nepoch <epoch>\n", written once when the
//     directory is created, via meta.tmp, fsync, rename and fsync of the
//     directory. The version is that of everything in the directory; Open
//     refuses a meta of another version. The epoch names this server's
//     numbering (Record.Seq): a directory that lost its meta begins a new
//     one.
//   - log-<N>: the segments of the log, N in 16 hex digits, numbered from 1
//     up. Every Open begins a new segment, so each process writes only its
//     own. A segment is created, its header written, the file fsynced and
//     the directory fsynced before any record goes into it. When it passes
//     Options.SegmentBytes, the next one is begun.
//   - snapshot-<N>: the table as it was when segment N began. Recovery loads
//     the newest snapshot and then replays segments N, N+1, and so on. It is
//     written as snapshot-<N>.tmp, fsynced, renamed and the directory
//     fsynced, whatever the Fsync level; only then are the segments before N
//     and older snapshots removed. A *.tmp file found by Open is
//     half-written, and removed.
//
// # Entries
//
// Segments and snapshots are sequences of entries, each
//
//	[length uint32 LE][crc uint32 LE][type byte][payload]
//
// where length counts the type and payload, and crc is the CRC-32C
// (Castagnoli) of them. A length of 0 is invalid, so that zero-filled pages
// left by a power cut read as damage; a length running past the end of the
// file is a torn entry. The types are:
//
//   - 1, segment header, first in every segment: magic "HRDL", version
//     (1 byte), segment number (8 LE), epoch and boot id (each a 1-byte
//     length and the bytes).
//   - 2, record: seq (8 LE), arrived (8 LE, Unix nanoseconds), the remote
//     address as a 1-byte length (0, 6 or 18) then the 4- or 16-byte address
//     and the 2-byte LE port, then the AT line to the end.
//   - 3, cursor: seq (8 LE), epoch (1-byte length and bytes), then the peer's
//     name to the end.
//   - 4, closed: no payload; the last entry of a segment whose process
//     closed the log.
//   - 5, snapshot header, first in every snapshot: magic "HRDS", version
//     (1 byte), the number N of the segment it was taken at (8 LE), epoch
//     (1-byte length and bytes). The cursors as they were when segment N
//     began follow it, then the records.
//   - 6, snapshot end, last in every snapshot: record count (8 LE), greatest
//     seq (8 LE). A snapshot without it, or whose count does not match, is
//     damaged.
//
// # Recovery
//
// Open stops reading a segment at the first entry it cannot read (torn,
// zero length, checksum mismatch, unknown type), cuts the file there and
// removes the segments after it, reporting each in Recovery.Damage; a gap in
// the numbering is cut the same way. The server then starts from exactly the
// intact prefix of what was written. A damaged snapshot keeps the records
// before the damage and makes the recovery Lossy: those after it are in no
// segment any more, so the cursors, which claim them, are dropped, and a new
// snapshot is taken soon. Damage never stops Open; a lock held elsewhere,
// an unreadable meta and I/O errors do.
//
// A log closed by Close ends with a closed entry; without one the previous
// process died, and if the machine also rebooted since (the boot id in the
// last segment's header differs), writes that were not fsynced may be lost:
// Recovery.Clean and Recovery.Unsynced tell.
package herdwal
