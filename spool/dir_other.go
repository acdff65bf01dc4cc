//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package spool

import (
	"os"
	"path/filepath"
)

// The agent that uses a spool runs on Linux; elsewhere the package only has to
// build and work, without the lock or the directory sync, which Windows, for one,
// does not offer on directories.

func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
}

func syncDir(string) error { return nil }
