package svc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"go.uber.org/fx"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/svc-dev/svc/registry"
)

// newEtcdClient returns a client for s. clientv3.New does not block on the
// connection, so an unreachable etcd does not stop the service from
// starting: the registrar and the config layer retry.
func newEtcdClient(s EtcdSettings) (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:   s.Endpoints,
		DialTimeout: s.DialTimeout,
		Username:    s.Username,
		Password:    s.Password,
		Logger:      zap.NewNop(),
		// Detect a dead connection within a few seconds, so that a lost
		// lease is noticed well inside its TTL.
		DialKeepAliveTime:    2 * s.DialTimeout,
		DialKeepAliveTimeout: s.DialTimeout,
		// gRPC's reconnect backoff grows to 120s by default: an instance
		// would then re-register minutes after etcd came back.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: s.DialTimeout,
		})},
	}
	if s.CA != "" || s.Cert != "" || s.Key != "" {
		tlsCfg, err := transport.TLSInfo{CertFile: s.Cert, KeyFile: s.Key, TrustedCAFile: s.CA}.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("svc: etcd TLS (etcd.tls.ca, etcd.tls.cert, etcd.tls.key): %w", err)
		}
		cfg.TLS = tlsCfg
	}
	for _, ep := range s.Endpoints {
		if strings.Contains(ep, " ") {
			return nil, fmt.Errorf("svc: etcd.endpoints: %q is not an endpoint", ep)
		}
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("svc: etcd client for %v: %w", s.Endpoints, err)
	}
	return cli, nil
}

// advertisedHost returns host, or the first non-loopback IPv4 address of
// this machine, or 127.0.0.1 when it has none.
func advertisedHost(host string, log *slog.Logger) string {
	if host != "" {
		return host
	}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	log.Warn("no non-loopback IPv4 address; advertising 127.0.0.1 (set registry.host)", "error", err)
	return "127.0.0.1"
}

// record is this instance as the registry advertises it; the ports are
// the bound ones, so call it once started.
func (a *App) record() registry.Record {
	info := a.instance.Info()
	return registry.Record{
		Name:        info.Name,
		ID:          info.Instance,
		Environment: info.Environment,
		Host:        a.host(),
		PublicPort:  info.Ports.Public,
		PrivatePort: info.Ports.Private,
		AdminPort:   info.Ports.Admin,
		URISpec:     a.settings.Registry.URISpec,
		Version:     info.Version,
		StartedAt:   info.StartedAt,
	}
}

// recordValue is GET /admin/instance: the record in its registry format.
func (a *App) recordValue() any {
	v, err := a.record().MarshalValue()
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	return json.RawMessage(v)
}

// registryStatus is GET /admin/registry.
func (a *App) registryStatus() any {
	if a.etcd == nil {
		return map[string]any{"configured": false, "detail": "etcd.endpoints is not set: nothing is registered; discovery uses overrides and the port convention"}
	}
	r := a.registrar.Load()
	if r == nil {
		return map[string]any{"configured": true, "registered": false, "last_error": "not started"}
	}
	return r.Status()
}

// wireRegistry appends the registration hook (after the servers serve) and
// the drain hooks: deregister on drain and shutdown, register on undrain.
// The registrar is made at start, once the bound ports are known.
func (a *App) wireRegistry(lc fx.Lifecycle) {
	a.ready.checks = append(a.ready.checks, Check{
		Name:          "registry",
		Informational: true,
		Func: func(context.Context) error {
			r := a.registrar.Load()
			if r == nil {
				return errors.New("not registered yet")
			}
			if st := r.Status(); !st.Registered {
				return fmt.Errorf("not registered: %s (retrying)", st.LastError)
			}
			return nil
		},
	}, Check{Name: "discovery", Informational: true, Func: a.discovery.Check})

	lc.Append(fx.Hook{OnStart: func(ctx context.Context) error {
		r, err := registry.NewRegistrar(a.etcd, a.record(), registry.RegistrarOptions{
			TTL:      a.settings.Registry.TTL,
			Attempts: a.settings.Registry.Attempts,
			Interval: a.settings.Registry.Interval,
			Logger:   a.log,
			Metrics:  a.metrics,
		})
		if err != nil {
			return fmt.Errorf("svc: registry: %w", err)
		}
		a.registrar.Store(r)
		a.onDrain(func(ctx context.Context) error { return a.deregister(ctx, r) },
			func(ctx context.Context) error { return r.Register(ctx, a.ready.healthy) })
		return r.Register(ctx, a.ready.healthy)
	}})
}

// deregisterTimeout bounds deregistration: with etcd down, the key goes
// with its lease (registry.ttl) instead of holding up the shutdown.
const deregisterTimeout = 2 * time.Second

// deregister deletes the instance's key. A failure is logged, not
// returned: the lease expires the key anyway, and the shutdown goes on.
func (a *App) deregister(ctx context.Context, r *registry.Registrar) error {
	ctx, cancel := context.WithTimeout(ctx, deregisterTimeout)
	defer cancel()
	if err := r.Deregister(ctx); err != nil {
		a.log.Warn("registry: deregister failed; the key expires with its lease",
			"ttl", a.settings.Registry.TTL.String(), "error", err)
	}
	return nil
}
