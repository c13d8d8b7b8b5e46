//go:build !unix

package main

import (
	"context"
	"errors"
)

// cmdUp needs Unix signals (SIGTERM, SIGUSR2) and process groups.
func cmdUp(context.Context, *env, []string) error {
	return errors.New("up needs a Unix system (it stops services with SIGTERM and restarts them in place with SIGUSR2)")
}
