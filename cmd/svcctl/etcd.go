package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/svc-dev/svc/internal/convention"
	"github.com/svc-dev/svc/registry"
)

// Defaults of the etcd connection.
const (
	etcdDialTimeout = 2 * time.Second
	etcdGetTimeout  = 3 * time.Second
)

// etcdFlags are the flags of the commands that read the registry.
type etcdFlags struct {
	endpoints string        // comma-separated; default $ETCD_ENDPOINTS
	env       string        // the environment listed; default $ENVIRONMENT or dev
	timeout   time.Duration // for one read of the registry
}

// etcdClient connects to etcd with the same variables a service reads:
// ETCD_ENDPOINTS, ETCD_USERNAME, ETCD_PASSWORD, ETCD_TLS_CA, ETCD_TLS_CERT,
// ETCD_TLS_KEY, ETCD_DIAL_TIMEOUT. The client does not block on the
// connection: an unreachable etcd shows as an error of the first read.
func etcdClient(e *env, f etcdFlags) (*clientv3.Client, []string, error) {
	var eps []string
	for ep := range strings.SplitSeq(f.endpoints, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		return nil, nil, usagef("no etcd endpoints: set ETCD_ENDPOINTS (host:2379[,host:2379]) or pass --endpoints")
	}
	dial := etcdDialTimeout
	if s := e.getenv("ETCD_DIAL_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, nil, usagef("ETCD_DIAL_TIMEOUT=%q: want a duration such as 2s", s)
		}
		dial = d
	}
	cfg := clientv3.Config{
		Endpoints:   eps,
		DialTimeout: dial,
		Username:    e.getenv("ETCD_USERNAME"),
		Password:    e.getenv("ETCD_PASSWORD"),
		Logger:      zap.NewNop(),
	}
	ca, cert, key := e.getenv("ETCD_TLS_CA"), e.getenv("ETCD_TLS_CERT"), e.getenv("ETCD_TLS_KEY")
	if ca != "" || cert != "" || key != "" {
		tlsCfg, err := transport.TLSInfo{CertFile: cert, KeyFile: key, TrustedCAFile: ca}.ClientConfig()
		if err != nil {
			return nil, nil, fmt.Errorf("etcd TLS (ETCD_TLS_CA, ETCD_TLS_CERT, ETCD_TLS_KEY): %w", err)
		}
		cfg.TLS = tlsCfg
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("etcd %s: %w", strings.Join(eps, ","), err)
	}
	return cli, eps, nil
}

// instance is one registered instance: the contract's registry value
// {"Op":0,"Addr":"host:port","Metadata":{...}} and its key
// svc/<environment>/services/<name>/<id>.
type instance struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	ID          string `json:"id"`
	Environment string `json:"environment"`
	Host        string `json:"host"`
	Addr        string `json:"addr"` // host:public port
	PublicPort  int    `json:"public_port"`
	PrivatePort int    `json:"private_port"`
	AdminPort   int    `json:"admin_port"`
	URISpec     string `json:"uri_spec,omitempty"`
	Version     string `json:"version"`
	StartedAt   string `json:"started_at"`
	Health      string `json:"health,omitempty"` // ready, not ready, draining, unreachable
	// EjectedBy lists the running services that keep this instance out of
	// their rotation (outlier ejection), as their /admin/registry says.
	EjectedBy []ejection `json:"ejected_by,omitempty"`
}

// servicesPrefix is where the instances of environment are registered.
func servicesPrefix(environment string) string { return convention.ServicesRoot(environment) }

// parseInstance decodes the value stored at key with the registry's own
// reader (which completes what the value lacks from the key).
func parseInstance(key string, val []byte) (instance, error) {
	ri, err := registry.ParseInstance(key, val)
	if err != nil {
		return instance{}, fmt.Errorf("value is not registry JSON: %w", err)
	}
	r := ri.Record
	in := instance{
		Key: key, Name: r.Name, ID: r.ID, Environment: r.Environment,
		Host: r.Host, Addr: ri.Addr, PublicPort: r.PublicPort,
		PrivatePort: r.PrivatePort, AdminPort: r.AdminPort, URISpec: r.URISpec,
		Version: r.Version,
	}
	if !r.StartedAt.IsZero() {
		in.StartedAt = r.StartedAt.UTC().Format(time.RFC3339Nano)
	}
	return in, nil
}

// listInstances reads every instance registered in environment, sorted by
// service name and id. Values it cannot read are returned as warnings.
func listInstances(ctx context.Context, cli *clientv3.Client, eps []string, environment string, timeout time.Duration) ([]instance, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	prefix := servicesPrefix(environment)
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, nil, fmt.Errorf("etcd %s unreachable: no answer within %s (check ETCD_ENDPOINTS)", strings.Join(eps, ","), timeout)
		}
		return nil, nil, fmt.Errorf("etcd %s: read %s: %w", strings.Join(eps, ","), prefix, err)
	}
	var out []instance
	var warnings []string
	for _, kv := range resp.Kvs {
		in, err := parseInstance(string(kv.Key), kv.Value)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("skipping %s: %v", kv.Key, err))
			continue
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b instance) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out, warnings, nil
}
