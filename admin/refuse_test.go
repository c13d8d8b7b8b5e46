package admin_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/svctest"
)

// What a browser page may not do to the admin listener, and what tools
// keep doing. Rows without a token exercise the Host check (DNS
// rebinding) and the cross-origin check (CSRF); rows with one show that
// the token replaces the Host check but not the cross-origin check.
func TestRefused(t *testing.T) {
	const evil = "http://evil.example"
	tests := []struct {
		name     string
		token    string
		method   string
		path     string
		hdr      []string // name, value pairs; "Host" sets the Host
		wantCode int
		wantErr  string // substring of the JSON error
	}{
		// Cross-site "simple" requests need no preflight: refused.
		{"origin evil, drain", "", "POST", "/admin/drain", []string{"Origin", evil}, 403, "cross-origin"},
		{"origin evil, task", "", "POST", "/admin/tasks/echo", []string{"Origin", evil, "Content-Type", "text/plain"}, 403, "cross-origin"},
		{"origin evil, loglevel", "", "PUT", "/admin/loglevel", []string{"Origin", evil}, 403, "cross-origin"},
		{"origin evil, gc", "", "POST", "/admin/gc", []string{"Origin", evil}, 403, "cross-origin"},
		{"sec-fetch-site cross-site", "", "POST", "/admin/drain", []string{"Sec-Fetch-Site", "cross-site"}, 403, "cross-origin"},
		{"sec-fetch-site same-site", "", "POST", "/admin/drain", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://localhost:3000"}, 403, "cross-origin"},
		{"origin other loopback port", "", "POST", "/admin/undrain", []string{"Origin", "http://127.0.0.1:3000"}, 403, "cross-origin"},
		// DNS rebinding: the page's own name in Host, same-origin to the browser.
		{"host evil, config", "", "GET", "/admin/config", []string{"Host", "evil.example:4010"}, 403, "not a loopback"},
		{"host evil, pprof", "", "GET", "/debug/pprof/", []string{"Host", "evil.example:4010"}, 403, "not a loopback"},
		{"host evil, same-origin drain", "", "POST", "/admin/drain", []string{"Host", "evil.example:4010", "Origin", "http://evil.example:4010", "Sec-Fetch-Site", "same-origin"}, 403, "not a loopback"},
		{"host evil, no such path", "", "GET", "/nope", []string{"Host", "evil.example"}, 403, "not a loopback"},
		{"host 0.0.0.0", "", "GET", "/admin/config", []string{"Host", "0.0.0.0:4010"}, 403, "not a loopback"},
		{"host localhost.evil", "", "GET", "/admin/config", []string{"Host", "localhost.evil.example:4010"}, 403, "not a loopback"},
		{"host 127.0.0.1.nip.io", "", "GET", "/admin/config", []string{"Host", "127.0.0.1.nip.io:4010"}, 403, "not a loopback"},
		{"host with a bad port", "", "GET", "/admin/config", []string{"Host", "localhost:http"}, 403, "not a loopback"},
		// Tools and same-origin pages keep working.
		{"curl drain", "", "POST", "/admin/drain", nil, 200, ""},
		{"curl config", "", "GET", "/admin/config", nil, 200, ""},
		{"host localhost", "", "GET", "/admin/config", []string{"Host", "localhost:4010"}, 200, ""},
		{"host LOCALHOST", "", "GET", "/admin/config", []string{"Host", "LOCALHOST"}, 200, ""},
		{"host localhost.", "", "GET", "/admin/config", []string{"Host", "localhost.:4010"}, 200, ""},
		{"host 127.0.0.2", "", "GET", "/admin/config", []string{"Host", "127.0.0.2:4010"}, 200, ""},
		{"host [::1]", "", "GET", "/admin/config", []string{"Host", "[::1]:4010"}, 200, ""},
		{"host [::1] no port", "", "GET", "/admin/config", []string{"Host", "[::1]"}, 200, ""},
		{"host mapped 127.0.0.1", "", "GET", "/admin/config", []string{"Host", "[::ffff:127.0.0.1]:4010"}, 200, ""},
		{"same-origin page, drain", "", "POST", "/admin/drain", []string{"Origin", "http://127.0.0.1:4010", "Sec-Fetch-Site", "same-origin"}, 200, ""},
		{"origin without sec-fetch-site, same host", "", "POST", "/admin/drain", []string{"Origin", "http://127.0.0.1:4010"}, 200, ""},
		{"typed in the address bar", "", "GET", "/admin/config", []string{"Sec-Fetch-Site", "none"}, 200, ""},
		{"cross-site GET is read-only", "", "GET", "/admin/loglevel", []string{"Sec-Fetch-Site", "cross-site"}, 200, ""},
		// With a token the Host check is off, the token and the
		// cross-origin check still apply.
		{"token, host evil", "t0ken", "GET", "/admin/config", []string{"Host", "evil.example:4010", "Authorization", "Bearer t0ken"}, 200, ""},
		{"token, host evil, no token", "t0ken", "GET", "/admin/config", []string{"Host", "evil.example:4010"}, 401, "bearer token"},
		{"token, origin evil", "t0ken", "POST", "/admin/drain", []string{"Origin", evil, "Authorization", "Bearer t0ken"}, 403, "cross-origin"},
		{"token, curl drain", "t0ken", "POST", "/admin/drain", []string{"Host", "10.0.0.7:4010", "Authorization", "Bearer t0ken"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.token, echoTask)
			rec := f.do(t, tt.method, tt.path, "", tt.hdr...)
			if rec.Code != tt.wantCode {
				t.Fatalf("%s %s %v: status %d; want %d; body %s", tt.method, tt.path, tt.hdr, rec.Code, tt.wantCode, rec.Body)
			}
			if tt.wantCode < 400 {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q; want application/json", ct)
			}
			var body struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || !strings.Contains(body.Error, tt.wantErr) {
				t.Errorf("body %s; want a JSON error containing %q", rec.Body, tt.wantErr)
			}
			if f.drained.Load() != 0 || f.undrains.Load() != 0 {
				t.Errorf("a refused request drained or undrained")
			}
		})
	}
}

// pprof's seconds parameter is capped: one request cannot hold a CPU
// profile, a trace or a delta profile for hours.
func TestPprofSecondsCap(t *testing.T) {
	tests := []struct {
		name     string
		max      time.Duration
		target   string
		wantCode int
		wantErr  string
	}{
		{"profile over the default cap", 0, "/debug/pprof/profile?seconds=61", 400, "cap of 1m0s"},
		{"profile hours", 0, "/debug/pprof/profile?seconds=36000", 400, "seconds=36000"},
		{"trace hours", 0, "/debug/pprof/trace?seconds=3600", 400, "cap of 1m0s"},
		{"trace fractional", 0, "/debug/pprof/trace?seconds=60.5", 400, "cap of 1m0s"},
		{"delta heap hours", 0, "/debug/pprof/heap?seconds=3600", 400, "cap of 1m0s"},
		{"delta allocs over a set cap", 5 * time.Second, "/debug/pprof/allocs?seconds=6", 400, "cap of 5s"},
		{"profile default over a set cap", 10 * time.Second, "/debug/pprof/profile", 400, "the default seconds=30"},
		{"profile at the cap", 0, "/debug/pprof/profile?seconds=60", 200, ""},
		{"trace within a set cap", 2 * time.Second, "/debug/pprof/trace?seconds=1", 200, ""},
		{"heap without seconds", 0, "/debug/pprof/heap", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := admin.New(admin.Params{MaxProfileDuration: tt.max})
			if err != nil {
				t.Fatal(err)
			}
			// An accepted profile returns at once: its context is done.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			req := httptest.NewRequestWithContext(ctx, http.MethodGet, tt.target, nil)
			req.Host = "localhost:4010"
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("GET %s (cap %v): status %d; want %d; body %.200s", tt.target, tt.max, rec.Code, tt.wantCode, rec.Body)
			}
			if tt.wantErr != "" && !strings.Contains(rec.Body.String(), tt.wantErr) {
				t.Errorf("GET %s: body %s; want it to name %q", tt.target, rec.Body, tt.wantErr)
			}
		})
	}
}

// Actions through the admin port are audit lines whatever the log level,
// with method, path, remote address and outcome, and never the token.
func TestAuditWhateverTheLevel(t *testing.T) {
	var logs svctest.LogBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))
	level := admin.NewLevel(slog.LevelError)
	defer level.Close()
	srv, err := admin.New(admin.Params{
		Level:   level,
		Drain:   func(context.Context) error { return nil },
		Undrain: func(context.Context) error { return nil },
		Reload:  func(context.Context) (any, error) { return map[string]any{}, nil },
		Tasks:   []admin.Task{echoTask},
		Token:   "t0ken",
		Logger:  log, // Audit nil: AuditLogger(Logger)
	})
	if err != nil {
		t.Fatal(err)
	}
	auth := []string{"Authorization", "Bearer t0ken"}
	tests := []struct {
		method, target, body string
		hdr                  []string
		want                 []string // substrings of the one audit line
	}{
		{"POST", "/admin/drain", "", auth, []string{`"path":"/admin/drain"`, `"status":200`, `"outcome":"ok"`}},
		{"POST", "/admin/undrain", "", auth, []string{`"path":"/admin/undrain"`, `"outcome":"ok"`}},
		{"POST", "/admin/config/reload", "", auth, []string{`"path":"/admin/config/reload"`, `"outcome":"ok"`}},
		{"PUT", "/admin/loglevel?for=5m", "debug", auth, []string{`"path":"/admin/loglevel?for=5m"`, `"level":"debug"`, `"previous":"error"`, `"for":"5m0s"`}},
		{"POST", "/admin/tasks/echo?password=hunter2&n=1", "", auth, []string{`"path":"/admin/tasks/echo?password=[redacted]&n=1"`, `"outcome":"ok"`}},
		{"POST", "/admin/tasks/nope", "", auth, []string{`"status":404`, `"outcome":"failed"`}},
		{"POST", "/admin/drain", "", []string{"Authorization", "Bearer wrong"}, []string{`"status":401`, `"outcome":"refused"`}},
		{"GET", "/admin/config", "", []string{"Authorization", "Bearer t0k"}, []string{`"method":"GET"`, `"status":401`, `"outcome":"refused"`}},
		{"POST", "/admin/drain", "", append([]string{"Origin", "http://evil.example"}, auth...), []string{`"status":403`, `"outcome":"refused"`}},
		{"GET", "/admin/loglevel", "", auth, nil}, // reads are not audited
	}
	for _, tt := range tests {
		before := len(logs.String())
		serve(srv, tt.method, tt.target, tt.body, append([]string{"X-Forwarded-For", "203.0.113.9"}, tt.hdr...)...)
		line := strings.TrimSpace(logs.String()[before:])
		if tt.want == nil {
			if line != "" {
				t.Errorf("%s %s: audit line %s; want none for a read", tt.method, tt.target, line)
			}
			continue
		}
		if strings.Count(line, "\n") != 0 || line == "" {
			t.Errorf("%s %s: audit output %q; want one line", tt.method, tt.target, line)
			continue
		}
		common := []string{`"msg":"admin action"`, `"audit":true`, `"method":"` + tt.method + `"`, `"remote":"192.0.2.1:1234"`}
		for _, w := range append(common, tt.want...) {
			if !strings.Contains(line, w) {
				t.Errorf("%s %s: audit line %s; want it to contain %s", tt.method, tt.target, line, w)
			}
		}
	}
	for _, secret := range []string{"t0ken", "Bearer", "hunter2", "Authorization"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("audit log contains %q:\n%s", secret, logs.String())
		}
	}
}
