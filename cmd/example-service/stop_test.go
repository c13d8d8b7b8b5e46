package main

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// A connection opened but never used (Go clients pre-dial them) must not
// hold up a stop: net/http's Shutdown alone waits up to 5s for it.
func TestStopDoesNotWaitForUnusedConnections(t *testing.T) {
	s := startService(t, []string{"PUBLIC_HOST=127.0.0.1", "PUBLIC_PORT=0", "PRIVATE_HOST=127.0.0.1", "PRIVATE_PORT=0",
		"ADMIN_PORT=0", "LOG_FORMAT=json", "SHUTDOWN_DRAIN=0s", "CONFIG_DIR=" + t.TempDir()})
	c, err := net.Dial("tcp", s.public)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d; want 0", code)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("stop with an unused connection open took %v; want about %v", took, 500*time.Millisecond)
	}
}
