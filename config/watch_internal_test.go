package config

import (
	"testing"

	"github.com/fsnotify/fsnotify"
)

// Only events that may change a watched file reload: other files in the
// directory and mode changes do not (a table of the filter, instead of
// waiting to see that nothing happened).
func TestRelevant(t *testing.T) {
	dirs := map[string]map[string]bool{"/etc/svc": {"orders.json": true, "orders.prod.json": true}}
	tests := []struct {
		ev   fsnotify.Event
		want bool
	}{
		{fsnotify.Event{Name: "/etc/svc/orders.json", Op: fsnotify.Write}, true},
		{fsnotify.Event{Name: "/etc/svc/orders.prod.json", Op: fsnotify.Create}, true},
		{fsnotify.Event{Name: "/etc/svc/orders.json", Op: fsnotify.Remove}, true},
		{fsnotify.Event{Name: "/etc/svc/orders.json", Op: fsnotify.Rename}, true},
		{fsnotify.Event{Name: "/etc/svc/..data", Op: fsnotify.Create}, true}, // a Kubernetes ConfigMap swap
		{fsnotify.Event{Name: "/etc/svc/orders.json", Op: fsnotify.Chmod}, false},
		{fsnotify.Event{Name: "/etc/svc/other.json", Op: fsnotify.Write}, false},
		{fsnotify.Event{Name: "/etc/other/orders.json", Op: fsnotify.Write}, false},
	}
	for _, tt := range tests {
		if got := relevant(tt.ev, dirs); got != tt.want {
			t.Errorf("relevant(%v) = %v; want %v", tt.ev, got, tt.want)
		}
	}
}
