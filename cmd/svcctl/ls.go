package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

const lsHelp = `Usage: svcctl ls [--env E] [--json] [--endpoints HOST:PORT,...] [--timeout 3s] [--token T]

Lists every instance registered in etcd under svc/<env>/services/, grouped
by service, with its health read from the instance's private port /readyz,
and, in EJECTED, the running services that keep it out of their rotation
(outlier ejection is local to each caller: svcctl asks every instance's
admin /admin/registry; instances of this host on loopback, others only
with an admin listener off loopback; the token comes from --token or
SVC_ADMIN_TOKEN).
etcd is reached through ETCD_ENDPOINTS (and ETCD_USERNAME, ETCD_PASSWORD,
ETCD_TLS_CA, ETCD_TLS_CERT, ETCD_TLS_KEY, ETCD_DIAL_TIMEOUT, as a service
reads them). --env defaults to $ENVIRONMENT, then dev. Exits 1 when etcd is
unreachable.
`

// healthTimeout bounds one /readyz request to a registered instance.
const healthTimeout = 2 * time.Second

// addEtcdFlags declares --env, --endpoints and --timeout on fs.
func addEtcdFlags(fs *flag.FlagSet, e *env, f *etcdFlags) {
	fs.StringVar(&f.env, "env", cmp.Or(e.getenv("ENVIRONMENT"), "dev"), "environment (default $ENVIRONMENT or dev)")
	fs.StringVar(&f.endpoints, "endpoints", e.getenv("ETCD_ENDPOINTS"), "etcd endpoints (default $ETCD_ENDPOINTS)")
	fs.DurationVar(&f.timeout, "timeout", etcdGetTimeout, "time for one read of the registry")
}

func cmdLs(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("ls", flag.ContinueOnError)
	var f etcdFlags
	addEtcdFlags(fs, e, &f)
	asJSON := fs.Bool("json", false, "print JSON")
	token := fs.String("token", "", "admin token for /admin/registry (default $SVC_ADMIN_TOKEN)")
	pos, err := parseFlags(fs, args, lsHelp)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("ls takes no arguments, got %q", pos)
	}
	cli, eps, err := etcdClient(e, f)
	if err != nil {
		return err
	}
	defer cli.Close()
	list, warnings, err := listInstances(ctx, cli, eps, f.env, f.timeout)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(e.stderr, "svcctl: warning: %s\n", cleanCell(w))
	}
	checkHealth(ctx, list)
	if *token == "" {
		*token = e.getenv(envToken)
	}
	checkEjections(ctx, list, *token)

	if *asJSON {
		groups := map[string][]instance{}
		for _, in := range list {
			groups[in.Name] = append(groups[in.Name], in)
		}
		return writeJSON(e.stdout, map[string]any{"environment": f.env, "services": groups})
	}
	if len(list) == 0 {
		fmt.Fprintf(e.stdout, "no instances registered in %s (etcd %s, prefix %s)\n", f.env, f.endpoints, servicesPrefix(f.env))
		return nil
	}
	rows := make([][]string, 0, len(list))
	services := 0
	for i, in := range list {
		name := in.Name
		if i > 0 && list[i-1].Name == in.Name {
			name = "" // grouped: the name once per service
		} else {
			services++
		}
		rows = append(rows, []string{
			name, in.ID, in.Addr, dash(in.PrivatePort), dash(in.AdminPort), in.Version, age(in.StartedAt), in.Health, ejectedCell(in),
		})
	}
	if err := table(e.stdout, []string{"SERVICE", "ID", "ADDR", "PRIVATE", "ADMIN", "VERSION", "UPTIME", "HEALTH", "EJECTED"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s of %s in %s\n", plural(len(list), "instance"), plural(services, "service"), f.env)
	return nil
}

// checkHealth reads every instance's private /readyz concurrently.
func checkHealth(ctx context.Context, list []instance) {
	hc := newHTTPClient(healthTimeout)
	var wg sync.WaitGroup
	for i := range list {
		in := &list[i]
		if in.PrivatePort == 0 {
			in.Health = "unknown"
			continue
		}
		wg.Go(func() {
			in.Health = readiness(ctx, hc, net.JoinHostPort(in.Host, strconv.Itoa(in.PrivatePort)))
		})
	}
	wg.Wait()
}

// age returns the time since an RFC 3339 timestamp, or "-".
func age(ts string) string {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return "-"
	}
	return time.Since(t).Round(time.Second).String()
}

// plural returns "1 instance", "2 instances".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
