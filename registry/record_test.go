package registry_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/svc-dev/svc/registry"
)

func TestPrefixAndKey(t *testing.T) {
	tests := []struct {
		env, name, want string
	}{
		{"dev", "orders", "svc/dev/services/orders/"},
		{"prod", "rand", "svc/prod/services/rand/"},
	}
	for _, tc := range tests {
		if got := registry.Prefix(tc.env, tc.name); got != tc.want {
			t.Errorf("Prefix(%q, %q) = %q; want %q", tc.env, tc.name, got, tc.want)
		}
	}
	if strings.HasPrefix(registry.Prefix("dev", "randpro"), registry.Prefix("dev", "rand")) {
		t.Error("the prefix of rand matches randpro")
	}
	if got, want := record("orders", "i-1", 8010).Key(), "svc/test/services/orders/i-1"; got != want {
		t.Errorf("Key() = %q; want %q", got, want)
	}
}

func TestValueRoundTrip(t *testing.T) {
	rec := record("orders", "i-1", 8010)
	rec.StartedAt = time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("CET", 3600))
	b, err := rec.MarshalValue()
	if err != nil {
		t.Fatal(err)
	}
	// The exact shape of etcd's naming/endpoints format, ports as numbers.
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["Op"] != float64(0) || raw["Addr"] != "127.0.0.1:8010" {
		t.Errorf("value %s: want Op 0 and Addr 127.0.0.1:8010", b)
	}
	md := raw["Metadata"].(map[string]any)
	for k, want := range map[string]any{
		"name": "orders", "id": "i-1", "environment": "test", "host": "127.0.0.1",
		"public_port": float64(8010), "private_port": float64(8011), "admin_port": float64(4010),
		"uri_spec": "/1.x/{territory}/users/{userid}", "version": "v1.2.3",
		"started_at": "2025-01-02T02:04:05.000000006Z",
	} {
		if md[k] != want {
			t.Errorf("Metadata[%q] = %#v; want %#v", k, md[k], want)
		}
	}
	if len(md) != 10 {
		t.Errorf("Metadata has %d fields; want 10: %v", len(md), md)
	}

	inst, err := registry.ParseInstance(rec.Key(), b)
	if err != nil {
		t.Fatal(err)
	}
	got := inst.Record
	if !got.StartedAt.Equal(rec.StartedAt) {
		t.Errorf("StartedAt = %v; want %v", got.StartedAt, rec.StartedAt)
	}
	got.StartedAt = rec.StartedAt
	if got != rec || inst.Key != rec.Key() || inst.BaseURL != "http://127.0.0.1:8010" {
		t.Errorf("ParseInstance = %+v; want record %+v", inst, rec)
	}

	v6 := rec
	v6.Host = "::1"
	if got := v6.Addr(); got != "[::1]:8010" {
		t.Errorf("Addr() of IPv6 host = %q; want [::1]:8010", got)
	}
}

func TestParseInstanceRejects(t *testing.T) {
	tests := []struct{ val, want string }{
		{"", "unexpected end"},
		{"nope", "invalid character"},
		{`{"Addr":"h:1"}`, "Op is not 0"},
		{`{"Op":1,"Addr":"h:1"}`, "Op is not 0"},
		{`{"Op":0,"Addr":"h"}`, "missing port"},
		{`{"Op":0,"Addr":":80"}`, "not host:port"},
		{`{"Op":0,"Addr":"h:0"}`, "not host:port"},
		{`{"Op":0,"Addr":"h:x"}`, "not host:port"},
	}
	for _, tc := range tests {
		_, err := registry.ParseInstance("k", []byte(tc.val))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseInstance(%q) error = %v; want one containing %q", tc.val, err, tc.want)
		}
	}
}
