package herdwal

// syncDir does nothing on Windows, which cannot fsync a directory: NTFS
// journals its directory entries itself.
func syncDir(string) error {
	return nil
}
