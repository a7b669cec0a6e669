package herdwal

import "time"

// SetTiming sets the intervals of the background work of logs opened with o:
// how often FsyncEverySec fsyncs, how often the snapshot threshold is
// checked (and the wait after a failed snapshot), and the wait before a
// failed write or fsync is retried.
func SetTiming(o *Options, syncEvery, snapshotCheck, retryPause time.Duration) {
	o.timing = timing{syncEvery: syncEvery, snapshotCheck: snapshotCheck, retryPause: retryPause, snapshotRetry: snapshotCheck}
}
