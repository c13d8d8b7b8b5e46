package svc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/fx"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svc-dev/svc/config"
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
		Password:    s.Password.Reveal(),
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
			return nil, fmt.Errorf("svc: etcd.endpoints: %q is not an endpoint", config.RedactValue(ep))
		}
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("svc: etcd client for %s: %w", config.RedactValue(strings.Join(s.Endpoints, ",")), err)
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

// registryView answers GET /admin/registry and GET /admin/instance: the
// record this instance advertises (or would, with a registry), and the
// registrar's status once the registration component made one.
type registryView struct {
	instance  *Instance
	settings  Settings
	discovery *registry.Discovery // for the instances this one ejected from its calls
	host      func() string       // the advertised host, looked up once
	r         *registration       // nil without etcd, or before the graph is built
}

func newRegistryView(in *Instance, st Settings, d *registry.Discovery, log *slog.Logger) *registryView {
	return &registryView{instance: in, settings: st, discovery: d,
		host: sync.OnceValue(func() string { return advertisedHost(st.Registry.Host, log) })}
}

// status is the registrar's status, and the instances of other services
// this one took out of rotation for its calls ("ejected"; svcctl ls shows
// them).
func (v *registryView) status() any {
	ejected := v.discovery.Ejected()
	if ejected == nil {
		ejected = []registry.EjectedInstance{}
	}
	if v.r == nil {
		return map[string]any{"configured": false, "ejected": ejected,
			"detail": "etcd.endpoints is not set: nothing is registered; discovery uses overrides and the port convention"}
	}
	r := v.r.registrar.Load()
	if r == nil {
		return map[string]any{"configured": true, "registered": false, "last_error": "not started", "ejected": ejected}
	}
	return struct {
		registry.Status
		Ejected []registry.EjectedInstance `json:"ejected"`
	}{r.Status(), ejected}
}

func (v *registryView) value() any {
	b, err := v.record().MarshalValue()
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	return json.RawMessage(b)
}

// record is this instance as the registry advertises it; the ports are
// the bound ones, so call it once started.
func (v *registryView) record() registry.Record {
	info := v.instance.Info()
	return registry.Record{
		Name:        info.Name,
		ID:          info.Instance,
		Environment: info.Environment,
		Host:        v.host(),
		PublicPort:  info.Ports.Public,
		PrivatePort: info.Ports.Private,
		AdminPort:   info.Ports.Admin,
		URISpec:     v.settings.Registry.URISpec,
		Version:     info.Version,
		StartedAt:   info.StartedAt,
	}
}

// registration registers this instance in etcd once the listeners serve
// and readiness passes, and deregisters it when draining begins.
type registration struct {
	settings  Settings
	view      *registryView
	registrar atomic.Pointer[registry.Registrar] // set at start
}

type registrationIn struct {
	Lifecycle fx.Lifecycle
	Hooks     *frameworkHooks
	Client    *clientv3.Client // nil without etcd
	Settings  Settings
	Instance  *Instance
	Readiness *readiness
	Drainer   *drainer
	Logger    *slog.Logger
	Metrics   prometheus.Registerer
	View      *registryView
	Listeners *listeners // registration starts after they serve
}

type registrationOut struct {
	Registration *registration
	Checks       []Check
}

func provideRegistration(in registrationIn) registrationOut {
	if in.Client == nil {
		return registrationOut{}
	}
	st, log := in.Settings, in.Logger
	r := &registration{settings: st, view: in.View}
	in.View.r = r
	in.Hooks.append(in.Lifecycle, fx.Hook{
		OnStart: func(ctx context.Context) error {
			reg, err := registry.NewRegistrar(in.Client, in.View.record(), registry.RegistrarOptions{
				TTL:      st.Registry.TTL,
				Attempts: st.Registry.Attempts,
				Interval: st.Registry.Interval,
				Logger:   log,
				Metrics:  in.Metrics,
			})
			if err != nil {
				return fmt.Errorf("svc: registry: %w", err)
			}
			r.registrar.Store(reg)
			in.Drainer.on(func(ctx context.Context) error { return r.deregister(ctx, log) },
				func(ctx context.Context) error { return reg.Register(ctx, in.Readiness.healthy) })
			return reg.Register(ctx, in.Readiness.healthy)
		},
		// Normally the stop step deregistered already; this covers a
		// start interrupted after registering.
		OnStop: func(ctx context.Context) error { return r.deregister(ctx, log) },
	}, false)
	check := Check{
		Name:          "registry",
		Informational: true,
		Func: func(context.Context) error {
			reg := r.registrar.Load()
			if reg == nil {
				return errors.New("not registered yet")
			}
			if st := reg.Status(); !st.Registered {
				return fmt.Errorf("not registered: %s (retrying)", st.LastError)
			}
			return nil
		},
	}
	return registrationOut{Registration: r, Checks: []Check{check}}
}

// deregisterTimeout bounds deregistration: with etcd down, the key goes
// with its lease (registry.ttl) instead of holding up the shutdown.
const deregisterTimeout = 2 * time.Second

// deregister deletes the instance's key. A failure is logged, not
// returned: the lease expires the key anyway, and the shutdown goes on.
func (r *registration) deregister(ctx context.Context, log *slog.Logger) error {
	reg := r.registrar.Load()
	if reg == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, deregisterTimeout)
	defer cancel()
	if err := reg.Deregister(ctx); err != nil {
		log.Warn("registry: deregister failed; the key expires with its lease",
			"ttl", r.settings.Registry.TTL.String(), "error", err)
	}
	return nil
}
