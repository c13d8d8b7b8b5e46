package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/etcdtest"
)

// TestLsEjected: svcctl ls asks each registered instance's admin
// /admin/registry which instances it ejects, and marks them in EJECTED
// (and ejected_by in JSON); an instance whose admin port does not answer
// reports nothing.
func TestLsEjected(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	until := time.Now().Add(30 * time.Second).UTC()
	callee := record{env: "qa", name: "orders", id: "o1", host: "127.0.0.1", public: 1, private: closedPort(t), admin: closedPort(t),
		version: "v1", started: "2026-01-02T03:04:05Z"}
	other := record{env: "qa", name: "orders", id: "o2", host: "127.0.0.1", public: 2, private: closedPort(t), admin: closedPort(t),
		version: "v1", started: "2026-01-02T03:04:05Z"}
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/admin/registry" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"registered":true,"ejected":[{"service":"orders","key":%q,"addr":"127.0.0.1:1","reason":"connect","since":%q,"until":%q,"ejections":1}]}`,
			callee.key(), time.Now().UTC().Format(time.RFC3339Nano), until.Format(time.RFC3339Nano))
	}))
	t.Cleanup(admin.Close)
	caller := record{env: "qa", name: "gateway", id: "g1", host: "127.0.0.1", public: 3, private: closedPort(t),
		admin: portOf(t, admin.URL), version: "v1", started: "2026-01-02T03:04:05Z"}
	put(t, cli, callee.key(), callee.value(), other.key(), other.value(), caller.key(), caller.value())
	env := map[string]string{"ETCD_ENDPOINTS": strings.Join(srv.Endpoints(), ",")}

	r := svcctl(t, env, "ls", "--env", "qa")
	want(t, r, 0, "EJECTED", "3 instances of 2 services in qa")
	for _, l := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(l)
		switch {
		case strings.Contains(l, " o1 "):
			if len(f) < 2 || f[len(f)-2] != "gateway/g1" || !strings.HasSuffix(f[len(f)-1], "s") {
				t.Errorf("ls line %q: want EJECTED gateway/g1 <time left>", l)
			}
		case strings.Contains(l, " o2 "), strings.Contains(l, " g1 "):
			if f[len(f)-1] != "-" {
				t.Errorf("ls line %q: want EJECTED -", l)
			}
		}
	}

	r = svcctl(t, env, "ls", "--env", "qa", "--json")
	want(t, r, 0)
	var got struct {
		Services map[string][]instance `json:"services"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	o1 := got.Services["orders"][0]
	if len(o1.EjectedBy) != 1 || o1.EjectedBy[0].By != "gateway/g1" || o1.EjectedBy[0].Reason != "connect" || !o1.EjectedBy[0].Until.Equal(until) {
		t.Errorf("orders o1 ejected_by = %+v; want gateway/g1, connect, until %v", o1.EjectedBy, until)
	}
	if o2 := got.Services["orders"][1]; len(o2.EjectedBy) != 0 {
		t.Errorf("orders o2 ejected_by = %+v; want none", o2.EjectedBy)
	}
}

// portOf returns the port of an httptest server's URL.
func portOf(t *testing.T, u string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
