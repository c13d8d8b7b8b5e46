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
	"time"

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

// Orders is a settings struct: each tagged field declares one key under
// a prefix.
type Orders struct {
	Workers int           `key:"workers" default:"4" doc:"concurrent workers" live:"true"`
	Timeout time.Duration `key:"timeout" default:"2s" doc:"time for one order"`
}

// Validate checks the values together; a reload that breaks it is
// rejected.
func (o *Orders) Validate() error {
	if o.Workers < 1 {
		return errors.New("orders.workers must be at least 1")
	}
	return nil
}

// Declare turns a tagged struct into declarations; Bind decodes it from a
// Live store and keeps it up to date. (svc.Config does both for a
// service.)
func ExampleBind() {
	decls, err := config.Declare[Orders]("orders")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range decls {
		fmt.Println(d.Key, d.Type, d.Default, d.Live)
	}
	schema, _ := config.NewSchema(decls...)

	dir, _ := os.MkdirTemp("", "config")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "orders.json")
	os.WriteFile(path, []byte(`{"orders":{"workers":8}}`), 0o600)
	live, err := config.NewLive(config.LiveOptions{Schema: schema}, schema.Defaults("convention"), config.NewFile(path))
	if err != nil {
		fmt.Println(err)
		return
	}
	orders, err := config.Bind[Orders](live, "orders")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(orders.Get().Workers, orders.Get().Timeout)

	os.WriteFile(path, []byte(`{"orders":{"workers":16}}`), 0o600) // live
	rep, _ := live.Reload(context.Background())
	fmt.Println(rep.Result, orders.Get().Workers)

	os.WriteFile(path, []byte(`{"orders":{"workers":0}}`), 0o600) // Validate refuses
	rep, _ = live.Reload(context.Background())
	fmt.Println(rep.Result, orders.Get().Workers)

	os.WriteFile(path, []byte(`{"orders":{"wrokers":16}}`), 0o600) // a typo
	rep, _ = live.Reload(context.Background())
	fmt.Println(rep.Result, orders.Get().Workers)
	// Output:
	// orders.workers int 4 true
	// orders.timeout duration 2s false
	// 8 2s
	// applied 16
	// rejected 16
	// rejected 16
}
