package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ejection is one running service keeping an instance out of its
// rotation: outlier ejection is local to each caller, so svcctl ls asks
// every registered instance's admin /admin/registry which instances it
// ejects ("ejected", registry.EjectedInstance) and marks them.
type ejection struct {
	By     string    `json:"by"` // the caller, "<name>/<id>"
	Reason string    `json:"reason"`
	Until  time.Time `json:"until"`
}

// ejectedAnswer is the part of /admin/registry svcctl reads.
type ejectedAnswer struct {
	Ejected []struct {
		Service string    `json:"service"`
		Key     string    `json:"key"`
		Addr    string    `json:"addr"`
		Reason  string    `json:"reason"`
		Until   time.Time `json:"until"`
	} `json:"ejected"`
}

// checkEjections asks every instance of list with an admin port for the
// instances it ejects, and records them on the ejected instances. The
// admin listener of an instance on this host is reached on loopback (its
// default bind); one elsewhere only if its admin listener is bound off
// loopback (with token). An instance that does not answer reports nothing.
func checkEjections(ctx context.Context, list []instance, token string) {
	hc := newHTTPClient(healthTimeout)
	local := localAddrs()
	var mu sync.Mutex // guards the EjectedBy of list
	var wg sync.WaitGroup
	// The callers are read from a copy: the goroutines write EjectedBy of
	// list's entries while the loop still starts others.
	callers := slices.Clone(list)
	for i := range callers {
		caller := callers[i]
		if caller.AdminPort == 0 {
			continue
		}
		host := caller.Host
		if local[host] {
			host = "127.0.0.1"
		}
		wg.Go(func() {
			ans, ok := askEjected(ctx, hc, net.JoinHostPort(host, strconv.Itoa(caller.AdminPort)), token)
			if !ok {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, e := range ans.Ejected {
				j := slices.IndexFunc(list, func(in instance) bool {
					return (e.Key != "" && in.Key == e.Key) || (e.Key == "" && in.Name == e.Service && in.Addr == e.Addr)
				})
				if j >= 0 {
					list[j].EjectedBy = append(list[j].EjectedBy, ejection{By: caller.Name + "/" + caller.ID, Reason: e.Reason, Until: e.Until})
				}
			}
		})
	}
	wg.Wait()
	for i := range list {
		slices.SortFunc(list[i].EjectedBy, func(a, b ejection) int { return strings.Compare(a.By, b.By) })
	}
}

// askEjected reads the "ejected" list of one admin listener.
func askEjected(ctx context.Context, hc *http.Client, hostport, token string) (ejectedAnswer, bool) {
	var ans ejectedAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostport+"/admin/registry", nil)
	if err != nil {
		return ans, false
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return ans, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ans, false
	}
	return ans, json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ans) == nil
}

// localAddrs returns the IP addresses of this host's interfaces.
func localAddrs() map[string]bool {
	m := map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			m[n.IP.String()] = true
		}
	}
	return m
}

// ejectedCell is the EJECTED column of an instance: "-", or who ejects it
// and for how long still ("gateway/4b9c 27s").
func ejectedCell(in instance) string {
	if len(in.EjectedBy) == 0 {
		return "-"
	}
	cells := make([]string, len(in.EjectedBy))
	for i, e := range in.EjectedBy {
		cells[i] = e.By + " " + max(time.Until(e.Until), 0).Round(time.Second).String()
	}
	return strings.Join(cells, ",")
}
