//go:build !linux

package herdwal

import "errors"

// mapping is never made where preallocate is not supported.
type mapping struct{}

func (f *osFile) preallocate(int64) error { return errors.ErrUnsupported }

// TryAppend never takes a write here: Write does.
func (f *osFile) TryAppend([]byte) bool { return false }

func (f *osFile) Write(p []byte) (int, error) { return f.File.Write(p) }

func (f *osFile) Size() (int64, error) { return f.size() }

func (f *osFile) Truncate(size int64) error { return f.File.Truncate(size) }

func (f *osFile) Close() error { return f.File.Close() }
