//go:build !unix

package connlimit

import (
	"errors"
	"fmt"
)

// nofile fails: the platform has no RLIMIT_NOFILE.
func nofile() (uint64, error) {
	return 0, fmt.Errorf("connlimit: RLIMIT_NOFILE: %w", errors.ErrUnsupported)
}
