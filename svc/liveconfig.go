package svc

import (
	"context"
	"errors"
	"strings"

	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/config/etcdsource"
)

// configure builds the live configuration over l, adding the etcd layer
// when first (decoded from files and environment) names endpoints, and
// decodes the settings again from it, so that a value from etcd takes
// effect at startup and a bad one fails it.
func (a *App) configure(name string, offset int, l *layers, first Settings) error {
	var etcdLayer config.Layer // untyped nil without etcd: NewLive skips it
	if len(first.Etcd.Endpoints) > 0 {
		var err error
		if a.etcd, err = newEtcdClient(first.Etcd); err != nil {
			return err
		}
		if a.etcdConf, err = etcdsource.New(a.etcd, first.Environment, name, etcdsource.Options{Logger: a.log}); err != nil {
			return err
		}
		etcdLayer = a.etcdConf
		a.ready.checks = append(a.ready.checks, Check{Name: "config", Informational: true, Func: a.etcdConf.Check})
	}
	live, err := l.live(etcdLayer, config.LiveOptions{Logger: a.log, Metrics: a.metrics})
	if err != nil {
		return err
	}
	st, err := decodeSettings(name, offset, l.dir, live.Current())
	if err != nil {
		return err
	}
	a.live, a.settings = live, st
	a.level.Set(st.LogLevel)

	// Everything but log.level is read once at startup: a reload reports
	// "restart required" for it instead of pretending to apply it.
	// Discovery fixes a name's source on its first resolve, so its keys
	// are startup-only too.
	var static []string
	for _, d := range keyDocs(offset) {
		if d.key != KeyLogLevel {
			static = append(static, d.key)
		}
	}
	live.Static(append(static, "etcd.*", "registry.*", "discovery.override.*", "services.*")...)
	live.Validate(KeyLogLevel, func(v string) error {
		if _, err := parseLevel(strings.TrimSpace(v)); err != nil {
			return errors.New("must be debug, info, warn or error")
		}
		return nil
	})
	live.OnChange(KeyLogLevel, func(c config.Change) {
		if c.New == nil {
			return
		}
		if lvl, err := parseLevel(strings.TrimSpace(c.New.Value)); err == nil {
			a.level.Set(lvl)
		}
	})
	return nil
}

// reload is POST /admin/config/reload.
func (a *App) reload(ctx context.Context) (any, error) {
	rep, err := a.live.Reload(ctx)
	if rep.Result == "" {
		return nil, err
	}
	return rep, nil
}
