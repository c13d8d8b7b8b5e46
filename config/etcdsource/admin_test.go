package etcdsource_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/internal/etcdtest"
)

// TestAdminConfig drives /admin/config and /admin/config/reload of an
// admin server wired to a Live with an etcd layer, as svc wires it.
func TestAdminConfig(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	put(t, cli, own("log.level"), "debug")
	s := newService(t, cli, `{"api":{"token":"file-secret"}}`, nil)
	s.live.Close() // no watches: only the forced reload below applies changes
	adm, err := admin.New(admin.Params{
		Config: func() []config.Value { return s.live.Current().All() },
		Reload: func(ctx context.Context) (any, error) {
			rep, err := s.live.Reload(ctx)
			if rep.Result == "" {
				return nil, err
			}
			return rep, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	do := func(method, path string, v any) {
		t.Helper()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, nil)
		req.Host = "localhost" // the admin listener refuses other hosts without a token
		adm.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s %s = %d %s", method, path, rec.Code, rec.Body)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, rec.Body)
		}
	}
	type entry struct{ Key, Value, Layer string }
	keys := func() map[string]entry {
		var body struct{ Keys []entry }
		do(http.MethodGet, "/admin/config", &body)
		m := map[string]entry{}
		for _, e := range body.Keys {
			m[e.Key] = e
		}
		return m
	}
	if got := keys()["log.level"]; got.Value != "debug" || got.Layer != "etcd" {
		t.Errorf("GET /admin/config log.level = %+v; want debug from etcd", got)
	}

	put(t, cli, own("log.level"), "error", own("api.token"), "etcd-secret", own("public.port"), "9000", own("orders.mode"), "fast")
	eventually(t, time.Second, "the etcd layer sees the puts", func() bool { v, _ := s.src.Lookup("orders.mode"); return v == "fast" })
	put(t, cli, own("log.level"), "loud")
	eventually(t, time.Second, "the etcd layer sees the bad level", func() bool { v, _ := s.src.Lookup("log.level"); return v == "loud" })

	var rep struct {
		Result  string
		Changed []struct {
			Key      string
			Old, New *struct{ Value, Layer string }
		}
		Rejected        []struct{ Key, Value, Layer, Error string }
		RestartRequired []struct{ Key string } `json:"restart_required"`
	}
	do(http.MethodPost, "/admin/config/reload", &rep)
	if rep.Result != config.ResultRejected {
		t.Errorf("result = %q; want rejected", rep.Result)
	}
	changed := map[string]string{}
	for _, c := range rep.Changed {
		show := func(v *struct{ Value, Layer string }) string {
			if v == nil {
				return "(not set)"
			}
			return v.Value + " (" + v.Layer + ")"
		}
		changed[c.Key] = show(c.Old) + " -> " + show(c.New)
	}
	want := map[string]string{
		"api.token":   "[redacted] (file " + s.file + ") -> [redacted] (etcd)",
		"orders.mode": "(not set) -> fast (etcd)",
	}
	if !maps.Equal(changed, want) {
		t.Errorf("changed = %q; want %q", changed, want)
	}
	if len(rep.Rejected) != 1 || rep.Rejected[0].Key != "log.level" || rep.Rejected[0].Value != "loud" || rep.Rejected[0].Layer != "etcd" ||
		rep.Rejected[0].Error != `config: log.level = "loud" (from etcd): must be debug, info, warn or error` {
		t.Errorf("rejected = %+v; want log.level = loud from etcd", rep.Rejected)
	}
	if len(rep.RestartRequired) != 1 || rep.RestartRequired[0].Key != "public.port" {
		t.Errorf("restart_required = %+v; want public.port", rep.RestartRequired)
	}

	got := keys()
	for key, want := range map[string]entry{
		"log.level":   {"log.level", "debug", "etcd"}, // the rejected value is not shown as in force
		"api.token":   {"api.token", "[redacted]", "etcd"},
		"public.port": {"public.port", "8010", "convention"},
		"orders.mode": {"orders.mode", "fast", "etcd"},
	} {
		if got[key] != want {
			t.Errorf("GET /admin/config %s = %+v; want %+v", key, got[key], want)
		}
	}
}
