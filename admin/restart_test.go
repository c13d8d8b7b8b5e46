package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/svc-dev/svc/admin"
)

// POST /admin/restart answers Params.Restart's answer with 200, a refusal
// with 409 and a failed restart with 500 and its reason; without
// Params.Restart there is no such endpoint.
func TestRestart(t *testing.T) {
	tests := []struct {
		name   string
		answer any
		err    error
		code   int
		body   string
	}{
		{"restarted", map[string]any{"state": "restarted", "pid": 42}, nil, http.StatusOK, `"state": "restarted"`},
		{"refused", nil, fmt.Errorf("%w: a restart is already in progress", admin.ErrRefused), http.StatusConflict, "already in progress"},
		{"failed", nil, errors.New("successor exited (exit status 3); its last stderr lines: boom"), http.StatusInternalServerError, "exit status 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := admin.New(admin.Params{Restart: func(context.Context) (any, error) { return tt.answer, tt.err }})
			if err != nil {
				t.Fatal(err)
			}
			rec := serve(srv, http.MethodPost, "/admin/restart", "")
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("POST /admin/restart = %d %s; want %d with %q", rec.Code, rec.Body, tt.code, tt.body)
			}
			if rec := serve(srv, http.MethodGet, "/admin/restart", ""); rec.Code == http.StatusOK {
				t.Errorf("GET /admin/restart = 200; want it refused")
			}
		})
	}
	srv, err := admin.New(admin.Params{})
	if err != nil {
		t.Fatal(err)
	}
	if rec := serve(srv, http.MethodPost, "/admin/restart", ""); rec.Code != http.StatusNotFound {
		t.Errorf("POST /admin/restart without Params.Restart = %d; want 404", rec.Code)
	}
}
