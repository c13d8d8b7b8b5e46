package registry_test

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/svc-dev/svc/registry"
)

// rotation resolves to its bases in turn, as a Discovery does.
type rotation struct {
	bases []string
	n     atomic.Uint64
}

func (r *rotation) Pick(string, []string) (string, error) {
	return r.bases[(r.n.Add(1)-1)%uint64(len(r.bases))], nil
}

// deadBase returns the base URL of a port nothing listens on.
func deadBase(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// A request whose instance refuses the connection goes to the next one:
// a crashed instance whose lease has not expired costs no failed request.
func TestTransportRetriesRefusedDial(t *testing.T) {
	live := echo("live")
	defer live.Close()
	dead := deadBase(t)

	tests := []struct {
		name   string
		bases  []string
		method string
		body   string
		wantOK bool
	}{
		{"get skips a dead instance", []string{dead, live.URL}, http.MethodGet, "", true},
		{"post with GetBody skips it too", []string{dead, live.URL}, http.MethodPost, "payload", true},
		{"all dead: the dial error after MaxAttempts", []string{dead, dead, dead, dead}, http.MethodGet, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &rotation{bases: tt.bases}
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			c := &http.Client{Transport: registry.NewTransport(r, registry.ClientOptions{Base: base})}
			var body *strings.Reader
			req, err := http.NewRequest(tt.method, "http://orders/x", nil)
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				req, err = http.NewRequest(tt.method, "http://orders/x", body)
			}
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("%s through [dead, live] = %v; want the live instance's answer", tt.method, err)
				}
				resp.Body.Close()
				return
			}
			var op *net.OpError
			if err == nil || !errors.As(err, &op) {
				t.Fatalf("all instances dead: err = %v; want the dial error", err)
			}
			if got := r.n.Load(); got != registry.DefaultMaxAttempts {
				t.Errorf("resolved %d times; want DefaultMaxAttempts = %d", got, registry.DefaultMaxAttempts)
			}
		})
	}
}
