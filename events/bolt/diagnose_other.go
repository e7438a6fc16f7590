//go:build !linux

package bolt

// diagnose returns err as is: the file system is examined on Linux only.
func (s *Store) diagnose(err error) error { return err }
