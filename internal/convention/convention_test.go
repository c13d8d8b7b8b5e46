package convention

import "testing"

func TestIsName(t *testing.T) {
	long := "a"
	for len(long) < 63 {
		long += "b"
	}
	tests := []struct {
		in   string
		want bool
	}{
		{"orders", true},
		{"user-sessions", true},
		{"a1", true},
		{long, true},
		{long + "c", false},
		{"", false},
		{"1abc", false},
		{"Orders", false},
		{"or_ders", false},
		{"-x", false},
		{"or.ders", false},
		{"127.0.0.1:80", false},
	}
	for _, tt := range tests {
		if got := IsName(tt.in); got != tt.want {
			t.Errorf("IsName(%q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

func TestCheckOffset(t *testing.T) {
	for _, tt := range []struct {
		in int
		ok bool
	}{{0, true}, {10, true}, {998, true}, {999, false}, {-1, false}} {
		if err := CheckOffset(tt.in); (err == nil) != tt.ok {
			t.Errorf("CheckOffset(%d) = %v; want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestPortsOf(t *testing.T) {
	if got, want := PortsOf(20), (Ports{Admin: 4020, Public: 8020, Private: 8021}); got != want {
		t.Errorf("PortsOf(20) = %+v; want %+v", got, want)
	}
	if got := PortsOf(MaxOffset); got.Admin > AdminPortLast || got.Private > 8999 {
		t.Errorf("PortsOf(MaxOffset) = %+v: outside the scanned ranges", got)
	}
}

func TestLayout(t *testing.T) {
	tests := []struct{ got, want string }{
		{ServicePrefix("dev", "orders"), "svc/dev/services/orders/"},
		{ServicesRoot("prod"), "svc/prod/services/"},
		{ConfigPrefix("dev", "orders"), "svc/dev/config/orders/"},
		{ConfigPrefix("dev", AllServices), "svc/dev/config/_all/"},
		{EnvName("discovery.override.user-sessions"), "DISCOVERY_OVERRIDE_USER_SESSIONS"},
		{OverrideKey("users"), "discovery.override.users"},
		{ServiceKey("users", "offset"), "services.users.offset"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q; want %q", tt.got, tt.want)
		}
	}
}
