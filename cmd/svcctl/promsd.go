package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const promSDHelp = `Usage: svcctl prom-sd [--env E] [--listen ADDR] [--endpoints HOST:PORT,...] [--timeout 3s]

Serves at GET / the Prometheus http_sd_config JSON of every instance
registered in svc/<env>/services/ (one target group per instance: its
host:private port, where /metrics is), read from etcd at every request:

  [{"targets":["10.0.0.5:8011"],"labels":{"__meta_svc_name":"example",...}}]

Labels: __meta_svc_name, __meta_svc_environment, __meta_svc_id,
__meta_svc_host, __meta_svc_version, __meta_svc_public_port,
__meta_svc_private_port, __meta_svc_admin_port, __meta_svc_uri_spec,
__meta_svc_started_at. --listen defaults to 127.0.0.1:9400. etcd is reached
as by svcctl ls; the first read must succeed, later failures answer 503 (and
Prometheus keeps its last targets). Stops on SIGINT or SIGTERM.
`

const defaultSDListen = "127.0.0.1:9400"

// targetGroup is one entry of Prometheus's http_sd_config JSON.
type targetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// targetGroups returns one group per instance that advertises a private
// port; the others cannot be scraped and are left out.
func targetGroups(list []instance) []targetGroup {
	groups := make([]targetGroup, 0, len(list))
	for _, in := range list {
		if in.PrivatePort == 0 {
			continue
		}
		labels := map[string]string{
			"__meta_svc_name":         in.Name,
			"__meta_svc_environment":  in.Environment,
			"__meta_svc_id":           in.ID,
			"__meta_svc_host":         in.Host,
			"__meta_svc_version":      in.Version,
			"__meta_svc_public_port":  strconv.Itoa(in.PublicPort),
			"__meta_svc_private_port": strconv.Itoa(in.PrivatePort),
			"__meta_svc_admin_port":   strconv.Itoa(in.AdminPort),
			"__meta_svc_uri_spec":     in.URISpec,
			"__meta_svc_started_at":   in.StartedAt,
		}
		groups = append(groups, targetGroup{
			Targets: []string{net.JoinHostPort(in.Host, strconv.Itoa(in.PrivatePort))},
			Labels:  labels,
		})
	}
	return groups
}

func cmdPromSD(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("prom-sd", flag.ContinueOnError)
	var f etcdFlags
	addEtcdFlags(fs, e, &f)
	listen := fs.String("listen", defaultSDListen, "address to serve on")
	pos, err := parseFlags(fs, args, promSDHelp)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("prom-sd takes no arguments, got %q", pos)
	}
	cli, eps, err := etcdClient(e, f)
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, _, err := listInstances(ctx, cli, eps, f.env, f.timeout); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("prom-sd: listen %s: %w", *listen, err)
	}
	srv := &http.Server{
		Handler:           promSDHandler(e, cli, eps, f),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      f.timeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	fmt.Fprintf(e.stdout, "prom-sd: serving the instances of %s (etcd %s) at http://%s/\n", f.env, f.endpoints, ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("prom-sd: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("prom-sd: shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("prom-sd: %w", err)
	}
	return nil
}

// promSDHandler answers GET / with the target groups, read from etcd.
func promSDHandler(e *env, cli *clientv3.Client, eps []string, f etcdFlags) http.Handler {
	var mu sync.Mutex // serializes writes to e.stderr
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(e.stderr, format, args...)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		list, warnings, err := listInstances(r.Context(), cli, eps, f.env, f.timeout)
		if err != nil {
			logf("svcctl: prom-sd: %v\n", err)
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		for _, w := range warnings {
			logf("svcctl: prom-sd: warning: %s\n", cleanCell(w))
		}
		w.Header().Set("Content-Type", "application/json")
		_ = writeJSON(w, targetGroups(list))
	})
	return mux
}
