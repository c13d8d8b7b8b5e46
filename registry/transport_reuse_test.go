package registry_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svc-dev/svc/registry"
)

// TestTransportReusesConnections: with no base given, 16 concurrent
// callers of one instance reuse their connections instead of opening one
// per request (net/http's default transport keeps only 2 idle connections
// per host: a relay then leaves thousands of sockets in TIME_WAIT per
// second), and http.Client.CloseIdleConnections reaches the base.
func TestTransportReusesConnections(t *testing.T) {
	var opened, closed atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			closed.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c := &http.Client{Transport: registry.NewTransport(fixed(srv.URL), registry.ClientOptions{})}
	const callers, each = 16, 50
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range each {
				resp, err := c.Get("http://orders/x")
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if n := opened.Load(); n > 2*callers {
		t.Errorf("%d callers x %d requests opened %d connections; want at most %d (reused)", callers, each, n, 2*callers)
	}

	c.CloseIdleConnections()
	waitFor(t, 5*time.Second, func() bool { return closed.Load() == opened.Load() },
		func() string { return "idle connections not closed by http.Client.CloseIdleConnections" })
}
