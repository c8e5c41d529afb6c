//go:build !unix

package cli

import (
	"errors"
	"io/fs"
)

func diskSpace(string) (free, total uint64, err error) {
	return 0, 0, errors.New("not supported on this platform")
}

func fileOwner(fs.FileInfo) (int, bool) { return 0, false }
