package svc_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/svc-dev/svc/svc"
	"github.com/svc-dev/svc/svctest"
)

// Load balancers probe health with HEAD: the private port answers it on
// its GET routes, with the GET status and no body.
func TestPrivateAnswersHead(t *testing.T) {
	app := svctest.Start(t, "heady", 70, svc.WithOutput(io.Discard, io.Discard))
	c := svctest.Client(t)
	for _, path := range []string{"/healthz", "/readyz", "/info"} {
		if r := do(t, c, http.MethodHead, app.PrivateURL+path, ""); r.code != http.StatusOK || r.body != "" {
			t.Errorf("HEAD %s = %d %q; want 200 and no body", path, r.code, r.body)
		}
	}
}
