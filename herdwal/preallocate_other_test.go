//go:build !linux

package herdwal_test

import "testing"

// preallocates reports whether segments in dir are allocated up front:
// only on Linux.
func preallocates(*testing.T, string) bool { return false }
