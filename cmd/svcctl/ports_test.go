package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPorts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		code          int
		contains      []string
	}{
		{
			name:     "ok.json",
			content:  `{"services":{"orders":{"offset":20},"users":{"offset":30,"host":"users.internal"},"example":{"offset":10}}}`,
			code:     0,
			contains: []string{"SERVICE", "example  10", "4010", "8010", "8011", "orders", "users", "ok", "next free offset: 40 (admin 4040, public 8040, private 8041)"},
		},
		{
			name:     "gap.json",
			content:  `{"services.orders.offset": 10, "services.users.offset": 30}`,
			code:     0,
			contains: []string{"next free offset: 20"},
		},
		{
			name:     "neighbours.json",
			content:  `{"services":{"orders":{"offset":10},"users":{"offset":11}}}`,
			code:     exitError,
			contains: []string{"neighbours.json: 1 port collision:", "port 8011 is used by orders (private, offset 10) and users (public, offset 11)"},
		},
		{
			name:     "same.json",
			content:  `{"services":{"orders":{"offset":20},"billing":{"offset":20}}}`,
			code:     exitError,
			contains: []string{"3 port collisions", "port 4020 is used by billing (admin, offset 20) and orders (admin, offset 20)", "port 8020", "port 8021"},
		},
		{
			name:     "malformed.json",
			content:  "{\n  \"services\": {\n    \"orders\": {\"offset\": 20,}\n  }\n}\n",
			code:     exitError,
			contains: []string{"malformed.json:3:"},
		},
		{
			name:     "type.json",
			content:  `{"services":{"orders":{"offset":"twenty"}}}`,
			code:     exitError,
			contains: []string{`type.json: key services.orders.offset: offset "twenty" must be an integer in 0..998`},
		},
		{
			name:     "range.json",
			content:  `{"services":{"orders":{"offset":999}}}`,
			code:     exitError,
			contains: []string{`offset "999" must be an integer in 0..998`},
		},
		{
			name:     "name.json",
			content:  `{"services":{"Orders_V2":{"offset":20}}}`,
			code:     exitError,
			contains: []string{`key services.orders_v2.offset: service name "orders_v2" must match`},
		},
		{
			name:     "empty.json",
			content:  `{"public":{"port":9000}}`,
			code:     exitError,
			contains: []string{"empty.json: no services.<name>.offset keys: not a port catalog"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := svcctl(t, nil, "ports", writeFile(t, dir, tc.name, tc.content))
			want(t, r, tc.code, tc.contains...)
			if tc.code == exitError && !strings.HasPrefix(r.stderr, "svcctl: "+dir) {
				t.Errorf("the error should start with the file name: %s", r)
			}
		})
	}
}

func TestPortsTableOnCollision(t *testing.T) {
	t.Parallel()
	file := writeFile(t, t.TempDir(), "c.json", `{"services":{"orders":{"offset":10},"users":{"offset":11},"billing":{"offset":30}}}`)
	r := svcctl(t, nil, "ports", file)
	want(t, r, exitError, "port 8011")
	for _, s := range []string{"orders   10", "COLLIDES on 8011", "billing  30", "next free offset: 20"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, r)
		}
	}
}

func TestPortsJSON(t *testing.T) {
	t.Parallel()
	file := writeFile(t, t.TempDir(), "c.json", `{"services":{"orders":{"offset":10},"users":{"offset":11}}}`)
	r := svcctl(t, nil, "ports", "--json", file)
	if r.code != exitError {
		t.Fatalf("want exit 1: %s", r)
	}
	var got struct {
		Services   []catalogEntry `json:"services"`
		Collisions []collision    `json:"collisions"`
		Next       int            `json:"next_free_offset"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("ports --json: %v\n%s", err, r)
	}
	if len(got.Services) != 2 || !reflect.DeepEqual(got.Services[0], catalogEntry{Name: "orders", Offset: 10, Admin: 4010, Public: 8010, Private: 8011}) {
		t.Errorf("services = %+v", got.Services)
	}
	if len(got.Collisions) != 1 || got.Collisions[0].Port != 8011 || len(got.Collisions[0].Uses) != 2 {
		t.Errorf("collisions = %+v; want port 8011 used twice", got.Collisions)
	}
	if got.Next != 20 {
		t.Errorf("next_free_offset = %d; want 20", got.Next)
	}

	ok := writeFile(t, t.TempDir(), "ok.json", `{"services":{"orders":{"offset":10}}}`)
	r = svcctl(t, nil, "ports", ok, "--json")
	want(t, r, 0, `"collisions": []`, `"next_free_offset": 20`)
}

func TestPortsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "services.json", `{"services":{"orders":{"offset":20}}}`)
	want(t, svcctl(t, map[string]string{"CONFIG_DIR": dir}, "ports"), 0, "orders", "next free offset: 10")
	want(t, svcctl(t, map[string]string{"CONFIG_DIR": t.TempDir()}, "ports"), exitError, "services.json does not exist")
	want(t, svcctl(t, nil, "ports", filepath.Join(dir, "missing.json")), exitError, "port catalog "+filepath.Join(dir, "missing.json")+" does not exist")
	want(t, svcctl(t, nil, "ports", "a.json", "b.json"), exitUsage, "ports takes one FILE")
}

// A catalog may name each service's package and extra environment for
// svcctl up; svcctl ports reads it as before.
func TestCatalogPackageEnv(t *testing.T) {
	t.Parallel()
	file := writeFile(t, t.TempDir(), "services.json", `{"services": {
		"orders": {"offset": 20, "package": "./cmd/orders", "env": {"LOG_LEVEL": "debug", "hello.greeting": "hi"}},
		"users": {"offset": 30}}}`)
	want(t, svcctl(t, nil, "ports", file), 0, "orders   20", "users    30")
	r := svcctl(t, nil, "ports", file, "--json")
	want(t, r, 0)
	if strings.Contains(r.stdout, "package") || strings.Contains(r.stdout, "debug") {
		t.Errorf("ports --json shows package or env:\n%s", r.stdout)
	}
	entries, err := readCatalog(file)
	if err != nil {
		t.Fatal(err)
	}
	o, u := entries[0], entries[1]
	if o.Name != "orders" || o.Package != "./cmd/orders" || len(o.Env) != 2 || o.Env["LOG_LEVEL"] != "debug" || o.Env["HELLO_GREETING"] != "hi" {
		t.Errorf("orders = %+v; want package ./cmd/orders, env LOG_LEVEL=debug HELLO_GREETING=hi", o)
	}
	if u.Name != "users" || u.Package != "" || u.Env != nil {
		t.Errorf("users = %+v; want no package, no env", u)
	}
}
