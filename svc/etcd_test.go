package svc_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/svc"
	"github.com/svc-dev/svc/svctest"
)

func put(t *testing.T, cli *clientv3.Client, key, val string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, key, val); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// With etcd.endpoints set, one client serves the config layer and the
// registry: etcd values apply at startup, log.level is live, a bad value is
// rejected and keeps the old one, a startup-only key says restart required,
// and the instance is registered under its service's prefix.
func TestEtcdConfigAndRegistry(t *testing.T) {
	etcd := etcdtest.Start(t)
	cli := etcd.Client(t)
	put(t, cli, "svc/dev/config/_all/log.level", "warn")
	put(t, cli, "svc/dev/config/live/log.level", "debug") // the service's own key wins over _all

	app := svctest.StartWith(t, "live", 40, svctest.Options{
		Env:    map[string]string{"ETCD_ENDPOINTS": strings.Join(etcd.Endpoints(), ","), "REGISTRY_HOST": "127.0.0.1"},
		Values: map[string]string{"registry.interval": "50ms"},
	}, svc.WithOutput(io.Discard, io.Discard))
	c := svctest.Client(t)

	level := func() string {
		return decode[map[string]string](t, do(t, c, "GET", app.AdminURL+"/admin/loglevel", ""))["level"]
	}
	if got := level(); got != "debug" {
		t.Fatalf("log level at start = %q; want debug from etcd", got)
	}
	type key struct{ Key, Value, Layer string }
	cfgOf := func(k string) key {
		for _, v := range decode[struct{ Keys []key }](t, do(t, c, "GET", app.AdminURL+"/admin/config", "")).Keys {
			if v.Key == k {
				return v
			}
		}
		return key{}
	}
	if got := cfgOf("log.level"); got.Layer != "etcd" || got.Value != "debug" {
		t.Errorf("/admin/config log.level = %+v; want debug from etcd", got)
	}

	put(t, cli, "svc/dev/config/live/log.level", "error")
	svctest.WaitFor(t, time.Second, "log.level error from etcd", func() bool { return level() == "error" })

	put(t, cli, "svc/dev/config/live/log.level", "loud")
	svctest.WaitFor(t, 2*time.Second, "the rejection to be counted", func() bool {
		return strings.Contains(do(t, c, "GET", app.PrivateURL+"/metrics", "").body, `svc_config_reloads_total{result="rejected"} 1`)
	})
	if got := level(); got != "error" {
		t.Errorf("after a bad log.level: level = %q; want error kept", got)
	}
	if got := cfgOf("log.level"); got.Value != "error" || got.Layer != "etcd" {
		t.Errorf("after a bad log.level: /admin/config = %+v; want error from etcd kept", got)
	}

	// The etcd layer is fed by its watch, so a reload reports the change
	// once the watch delivered it (at once, or within a moment).
	put(t, cli, "svc/dev/config/live/shutdown.timeout", "3s")
	svctest.WaitFor(t, 2*time.Second, "POST /admin/config/reload to report shutdown.timeout as restart required", func() bool {
		r := do(t, c, "POST", app.AdminURL+"/admin/config/reload", "")
		return r.code == http.StatusOK && strings.Contains(r.body, `"key": "shutdown.timeout"`)
	})
	if got := cfgOf("shutdown.timeout"); got.Value != "10s" {
		t.Errorf("shutdown.timeout after reload = %+v; want 10s kept (restart required)", got)
	}

	// Registered under svc/dev/services/live/ with the bound public port.
	svctest.WaitFor(t, 5*time.Second, "registration", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, "svc/dev/services/live/", clientv3.WithPrefix())
		if err != nil || len(resp.Kvs) != 1 {
			return false
		}
		return strings.Contains(string(resp.Kvs[0].Value), `"Addr":"`+strings.TrimPrefix(app.PublicURL, "http://")+`"`)
	})
	if body := do(t, c, "GET", app.PrivateURL+"/metrics", "").body; !strings.Contains(body, "svc_registry_registered 1") {
		t.Errorf("svc_registry_registered is not 1 once registered")
	}
}

// A value of the wrong type in etcd fails startup naming key, value and layer.
func TestEtcdWrongTypeFailsStart(t *testing.T) {
	etcd := etcdtest.Start(t)
	put(t, etcd.Client(t), "svc/dev/config/bad/shutdown.drain", "soon")
	_, err := svc.New("bad", 50,
		svc.WithEnv(map[string]string{"CONFIG_DIR": t.TempDir(), "ETCD_ENDPOINTS": strings.Join(etcd.Endpoints(), ",")}),
		svc.WithOutput(io.Discard, io.Discard))
	if err == nil || !strings.Contains(err.Error(), `shutdown.drain = "soon" (from etcd)`) {
		t.Fatalf("svc.New with shutdown.drain=soon in etcd: err = %v; want it to name key, value and layer", err)
	}
}

// etcd unreachable at start: the service serves, says so in /readyz (200,
// warn) and in svc_registry_registered 0.
func TestEtcdUnreachableServesAnyway(t *testing.T) {
	app := svctest.StartWith(t, "lonely", 60, svctest.Options{
		Env: map[string]string{"ETCD_ENDPOINTS": "127.0.0.1:1", "ETCD_DIAL_TIMEOUT": "200ms"},
	}, svc.WithOutput(io.Discard, io.Discard))
	c := svctest.Client(t)
	r := do(t, c, "GET", app.PrivateURL+"/readyz", "")
	if r.code != http.StatusOK || !strings.Contains(r.body, `"registry":{"status":"warn"`) {
		t.Errorf("/readyz with etcd down = %d %s; want 200 with the registry check warning", r.code, r.body)
	}
	if body := do(t, c, "GET", app.PrivateURL+"/metrics", "").body; !strings.Contains(body, "svc_registry_registered 0") {
		t.Errorf("svc_registry_registered is not 0 with etcd down")
	}
}
