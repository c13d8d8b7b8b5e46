//go:build unix

package connlimit

import (
	"fmt"
	"syscall"
)

// nofile returns the soft RLIMIT_NOFILE.
func nofile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("connlimit: getrlimit RLIMIT_NOFILE: %w", err)
	}
	return uint64(lim.Cur), nil
}
