//go:build unix && !linux

package main

// adoptOrphans reports false: only Linux has a child subreaper, so the
// successor of an in-place restart is polled until it exits.
func adoptOrphans() bool { return false }
