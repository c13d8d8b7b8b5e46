package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const configHelp = `config [--json]: effective configuration: key, value, layer (secrets redacted)
  config set KEY VALUE [--for DURATION]: set KEY on the running service (PUT /admin/config/KEY),
      above every layer, until unset or the process ends; --for reverts after DURATION;
      a startup-only key answers "restart required"
  config unset KEY: drop the value set with config set (DELETE /admin/config/KEY)`

// configChange is what svcctl reads of the answer of PUT and DELETE
// /admin/config/{key}; other fields are ignored, and any of these may be
// absent. message, when the service sends one, is printed as it is.
type configChange struct {
	Key             string          `json:"key"`
	Value           *string         `json:"value"`
	Layer           string          `json:"layer"`
	Previous        json.RawMessage `json:"previous"`         // "value" or {"value": ..., "layer": ...}
	Expires         string          `json:"expires"`          // when the override ends by itself
	Result          string          `json:"result"`           // applied, restart_required, ...
	RestartRequired bool            `json:"restart_required"` // the value waits for a restart
	Message         string          `json:"message"`
}

// svcConfigChange runs "config set KEY VALUE [--for D]" and "config unset KEY".
func svcConfigChange(ctx context.Context, e *env, c *adminClient, fs *flag.FlagSet, args []string, asJSON bool) error {
	d := fs.Lookup("for").Value.(flag.Getter).Get().(time.Duration)
	var method string
	var body io.Reader
	switch {
	case args[0] == "set" && len(args) == 3:
		method, body = http.MethodPut, strings.NewReader(args[2])
		if d < 0 {
			return usagef("config set --for %s: want a positive duration", d)
		}
	case args[0] == "unset" && len(args) == 2:
		method = http.MethodDelete
		if d != 0 {
			return usagef("config unset takes no --for")
		}
	default:
		return usagef("usage: svcctl %s config [set KEY VALUE [--for DURATION] | unset KEY]", c.label)
	}
	key := args[1]
	if key == "" || strings.ContainsAny(key, "/?# \t\n") {
		return usagef("config %s: %q is not a configuration key (dotted, like log.level)", args[0], key)
	}
	path := "/admin/config/" + url.PathEscape(key)
	if d > 0 {
		path += "?for=" + url.QueryEscape(d.String())
	}

	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		var se *statusError
		if errors.As(err, &se) && se.code == http.StatusConflict {
			return fmt.Errorf("%s (a startup-only key: set it in a file, etcd or the environment, then svcctl %s restart)", err, c.target())
		}
		if errors.As(err, &se) && se.code == http.StatusNotFound && strings.Contains(err.Error(), "no such admin endpoint") {
			return fmt.Errorf("%s (the service's svc version does not serve config changes)", err)
		}
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %s %s: %s", c.label, method, path, connError(err))
	}
	if asJSON {
		if !json.Valid(raw) {
			return fmt.Errorf("%s: %s %s: the answer is not JSON", c.label, method, path)
		}
		var buf bytes.Buffer
		json.Indent(&buf, raw, "", "  ")
		buf.WriteByte('\n')
		_, err := e.stdout.Write(escapeJSON(buf.Bytes()))
		return err
	}
	var ch configChange
	if err := json.Unmarshal(raw, &ch); err != nil {
		return fmt.Errorf("%s: %s %s: unexpected answer: %w", c.label, method, path, err)
	}
	restart := ch.RestartRequired || ch.Result == "restart_required" || resp.StatusCode == http.StatusAccepted
	fmt.Fprintln(e.stdout, describeChange(key, args[0] == "unset", ch, restart))
	if restart {
		fmt.Fprintf(e.stdout, "restart required: %s is startup-only; the value in force stays, and a restart drops overrides: set it in a file, etcd or the environment, then svcctl %s restart\n", cleanCell(key), c.target())
	}
	return nil
}

// describeChange is the line printed for a change the service accepted.
func describeChange(key string, unset bool, ch configChange, restart bool) string {
	if ch.Message != "" {
		return cleanCell(ch.Message)
	}
	var b strings.Builder
	b.WriteString(cleanCell(key))
	switch {
	case ch.Value != nil:
		fmt.Fprintf(&b, " = %s", cleanCell(*ch.Value))
	case unset:
		b.WriteString(" unset")
	}
	if ch.Layer != "" {
		fmt.Fprintf(&b, " (from %s)", cleanCell(ch.Layer))
	}
	if prev := previous(ch.Previous); prev != "" {
		fmt.Fprintf(&b, "; was %s", prev)
	}
	if ch.Expires != "" {
		fmt.Fprintf(&b, "; reverts at %s", cleanCell(ch.Expires))
	}
	if restart {
		b.WriteString("; not in force yet")
	}
	return b.String()
}

// previous renders the previous value: a JSON string, or an object with
// value and layer.
func previous(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return cleanCell(s)
	}
	var v struct {
		Value *string `json:"value"`
		Layer string  `json:"layer"`
	}
	if json.Unmarshal(raw, &v) != nil || v.Value == nil {
		return ""
	}
	if v.Layer == "" {
		return cleanCell(*v.Value)
	}
	return cleanCell(*v.Value) + " from " + cleanCell(v.Layer)
}

// svcRestart runs "restart [--wait D]": POST /admin/restart, then, with
// --wait, polls GET / until the service answers as a new process (another
// instance or start time), for at most D.
func svcRestart(ctx context.Context, e *env, c *adminClient, fs *flag.FlagSet, _ []string, asJSON bool) error {
	wait := fs.Lookup("wait").Value.(flag.Getter).Get().(time.Duration)
	if wait < 0 {
		return usagef("restart --wait %s: want a positive duration", wait)
	}
	var before info
	if wait > 0 {
		if err := c.getJSON(ctx, "/", &before); err != nil {
			return err
		}
	}
	var resp map[string]any
	if err := c.callJSON(ctx, http.MethodPost, "/admin/restart", nil, &resp); err != nil {
		var se *statusError
		if errors.As(err, &se) && (se.code == http.StatusNotFound || se.code == http.StatusMethodNotAllowed) {
			return fmt.Errorf("%s (the service's svc version does not restart in place; restart it with its supervisor)", err)
		}
		return err
	}
	if asJSON && wait == 0 {
		return writeJSON(e.stdout, resp)
	}
	if !asJSON {
		msg, _ := resp["message"].(string)
		if msg == "" {
			msg, _ = resp["state"].(string)
		}
		if msg == "" {
			msg = "restarting"
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", c.label, cleanCell(msg))
	}
	if wait == 0 {
		return nil
	}
	after, err := waitRestarted(ctx, c, before, wait)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e.stdout, map[string]any{"restart": resp, "info": after})
	}
	fmt.Fprintf(e.stdout, "%s: restarted: instance %s, started at %s\n", c.label, cleanCell(after.Instance), after.StartedAt.Format(time.RFC3339))
	return nil
}

// restartPoll is how often restart --wait asks whether the new process
// answers.
const restartPoll = 100 * time.Millisecond

// waitRestarted polls GET / until it answers with an instance or a start
// time other than before's, for at most wait.
func waitRestarted(ctx context.Context, c *adminClient, before info, wait time.Duration) (info, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(restartPoll)
	defer tick.Stop()
	for {
		var now info
		if err := c.getJSON(ctx, "/", &now); err == nil &&
			(now.Instance != before.Instance || !now.StartedAt.Equal(before.StartedAt)) {
			return now, nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return info{}, fmt.Errorf("%s: restart requested, but no new process answered within %s", c.label, wait)
			}
			return info{}, fmt.Errorf("%s: interrupted while waiting for the restart", c.label)
		case <-tick.C:
		}
	}
}
