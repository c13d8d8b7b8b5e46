package config_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/svc-dev/svc/config"
)

func ExampleParseJSON() {
	flat, err := config.ParseJSON([]byte(`{
		"public": {"port": 9000},
		"Log": {"Level": "debug"},
		"etcd": {"endpoints": ["http://a:2379", "http://b:2379"]},
		"unused": null
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, k := range slices.Sorted(maps.Keys(flat)) {
		fmt.Printf("%s = %s\n", k, flat[k])
	}
	_, err = config.ParseJSON([]byte("{\n  \"public\": {\"port\": 9000,}\n}"))
	fmt.Println(err)
	// Output:
	// etcd.endpoints = http://a:2379,http://b:2379
	// log.level = debug
	// public.port = 9000
	// 2:27: invalid character '}' looking for beginning of object key string
}

func ExampleNewStore() {
	store := config.NewStore(nil,
		config.NewMap("convention", map[string]string{"public.port": "8010", "log.level": "info"}),
		config.NewMap("file config/orders.json", map[string]string{"public.port": "9000", "log.level": "warn"}),
		config.NewMap("etcd", map[string]string{"log.level": "debug"}),
		config.NewEnv(config.MapLookup(map[string]string{"PUBLIC_PORT": "eighty"})),
	)
	for _, v := range store.All() {
		fmt.Printf("%s = %s (%s)\n", v.Key, v.Value, v.Layer)
	}
	_, err := store.Int("public.port", 0)
	fmt.Println(err)
	// Output:
	// log.level = debug (etcd)
	// public.port = eighty (env)
	// config: public.port = "eighty" (from env PUBLIC_PORT): not an integer
}

func ExampleEnvName() {
	fmt.Println(config.EnvName("public.port"))
	fmt.Println(config.EnvName("discovery.override.user-sessions"))
	// Output:
	// PUBLIC_PORT
	// DISCOVERY_OVERRIDE_USER_SESSIONS
}

func ExampleRedact() {
	fmt.Println(config.Redact("etcd.password", "hunter2"))
	fmt.Println(config.Redact("admin.token", "s3cret"))
	fmt.Println(config.Redact("public.port", "9000"))
	// Output:
	// [redacted]
	// [redacted]
	// 9000
}

// A live store re-reads its file on Reload (and, after Start, whenever the
// file changes): a good value applies, a bad one is rejected and the
// previous one stays in force.
func ExampleLive() {
	dir, _ := os.MkdirTemp("", "config")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "orders.json")
	os.WriteFile(path, []byte(`{"log":{"level":"info"}}`), 0o600)

	live, err := config.NewLive(config.LiveOptions{}, config.NewFile(path))
	if err != nil {
		fmt.Println(err)
		return
	}
	live.Validate("log.level", func(s string) error {
		var l slog.Level
		if l.UnmarshalText([]byte(s)) != nil {
			return errors.New("must be debug, info, warn or error")
		}
		return nil
	})
	live.OnChange("log.level", func(c config.Change) {
		fmt.Printf("log.level: %s -> %s\n", c.Old.Value, c.New.Value)
	})

	os.WriteFile(path, []byte(`{"log":{"level":"debug"}}`), 0o600)
	rep, _ := live.Reload(context.Background())
	fmt.Println(rep.Result)

	os.WriteFile(path, []byte(`{"log":{"level":"loud"}}`), 0o600)
	rep, _ = live.Reload(context.Background())
	fmt.Println(rep.Result, rep.Rejected[0].Err.Error() == `config: log.level = "loud" (from file `+path+`): must be debug, info, warn or error`)
	fmt.Println(live.Current().String("log.level", ""))
	// Output:
	// log.level: info -> debug
	// applied
	// rejected true
	// debug
}

// A Var is a typed value that follows reloads; Get is lock-free.
func ExampleNewVar() {
	dir, _ := os.MkdirTemp("", "config")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "orders.json")
	os.WriteFile(path, []byte(`{"orders":{"workers":4}}`), 0o600)

	live, _ := config.NewLive(config.LiveOptions{}, config.NewFile(path))
	workers, err := config.NewVar(live, "orders.workers", 1, config.ParseInt, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(workers.Get())

	os.WriteFile(path, []byte(`{"orders":{"workers":"many"}}`), 0o600)
	rep, _ := live.Reload(context.Background())
	fmt.Println(rep.Result, workers.Get())

	os.WriteFile(path, []byte(`{"orders":{"workers":8}}`), 0o600)
	live.Reload(context.Background())
	fmt.Println(workers.Get())
	// Output:
	// 4
	// rejected 4
	// 8
}
