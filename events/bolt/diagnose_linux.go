package bolt

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// diagnose adds to err the operating system's reason the data file cannot
// be written, when err does not carry one: bbolt reports a failure to grow
// the file as text only. The reason comes from the file system (no space
// left, mounted read-only) or from access(2) on the file (read-only or
// immutable file), never from the error's text.
func (s *Store) diagnose(err error) error {
	var errno syscall.Errno
	if err == nil || errors.As(err, &errno) {
		return err
	}
	var st unix.Statfs_t
	if unix.Statfs(s.path, &st) == nil {
		switch {
		case st.Flags&unix.ST_RDONLY != 0:
			return diagnosed{err, syscall.EROFS}
		case st.Bavail == 0:
			return diagnosed{err, syscall.ENOSPC}
		}
	}
	if aerr := unix.Access(s.path, unix.W_OK); aerr != nil && errors.As(aerr, &errno) {
		return diagnosed{err, errno}
	}
	return err
}

// diagnosed is an error together with the reason found for it.
type diagnosed struct {
	err    error
	reason syscall.Errno
}

func (d diagnosed) Error() string   { return fmt.Sprintf("%v (%v)", d.err, d.reason) }
func (d diagnosed) Unwrap() []error { return []error{d.err, d.reason} }
