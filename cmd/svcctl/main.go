// Command svcctl sees and steers the svc services on this host and in an
// environment: one static binary (CGO_ENABLED=0), no configuration.
//
//	svcctl ps [--json]                        services on this host (admin ports 4000-4999 on 127.0.0.1)
//	svcctl ls [--env E] [--json]              instances registered in etcd (ETCD_ENDPOINTS), with health
//	svcctl ports [FILE] [--json]              check a port catalog for collisions; print the next free offset
//	svcctl prom-sd [--env E] [--listen ADDR]  serve Prometheus http_sd_config targets from the registry
//	svcctl up [FILE] [--watch]                build and run every service of a port catalog on this machine
//	svcctl <service|admin-port> COMMAND ...   act on one service through its admin listener:
//	    info, loglevel [LEVEL] [--for 5m], config, config set KEY VALUE [--for 5m],
//	    config unset KEY, restart [--wait 30s], drain, undrain, tasks,
//	    task NAME [k=v ...], stack, memstats, gc, build, registry, instance,
//	    pprof cpu|heap|... [--seconds N] [-o FILE], get PATH, post PATH
//
// A service is named by its name (found on this host like svcctl ps finds
// it), by its admin port (4010) or by host:port. The admin token comes from
// --token or SVC_ADMIN_TOKEN and is sent as "Authorization: Bearer".
//
// Output is an aligned table for people and JSON with --json for scripts.
// Nothing a service or the registry sends reaches the terminal raw: control
// characters are printed escaped (sanitize.go).
// Exit codes: 0 success, 1 error (including "no service found" and an
// unreachable etcd), 2 usage. docs/svcctl.md has examples.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
