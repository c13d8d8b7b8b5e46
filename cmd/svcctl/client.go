package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// Timeouts of the HTTP calls svcctl makes.
const (
	dialTimeout  = 500 * time.Millisecond // a loopback or LAN connect
	probeTimeout = time.Second            // one discovery or readiness request
	callTimeout  = 10 * time.Second       // one admin request that returns at once
)

// newHTTPClient returns a client that never uses a proxy (admin and
// private ports are reached directly) and dials within dialTimeout. It
// keeps no idle connection: a command makes a few requests and ends, and
// connections left open would count against the service's small
// connection caps on its admin and private listeners until they time out.
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:             nil,
			DialContext:       (&net.Dialer{Timeout: dialTimeout}).DialContext,
			DisableKeepAlives: true,
		},
	}
}

// adminClient talks to one service's admin listener.
type adminClient struct {
	base  string // "http://127.0.0.1:4010"
	label string // "example (127.0.0.1:4010)" or "127.0.0.1:4010", for messages
	name  string // service name when known
	token string
	http  *http.Client
}

// statusError is a non-2xx answer of an admin endpoint.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// do sends a request and returns the response when its status is 2xx; any
// other status is a *statusError carrying the service's own message.
func (c *adminClient) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.label, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", c.label, connError(err))
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	msg := errorMessage(resp)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		if c.token == "" {
			msg += " (pass --token or set SVC_ADMIN_TOKEN)"
		} else {
			msg += " (the token given was refused)"
		}
		msg = "unauthorized: " + msg
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		if !strings.HasPrefix(msg, "admin: ") { // not the endpoint's own message: name it
			msg = fmt.Sprintf("%s %s: %s", method, path, msg)
		}
	}
	return nil, &statusError{code: resp.StatusCode, msg: fmt.Sprintf("%s: %s", c.label, msg)}
}

// errorMessage returns the "error" field of a JSON error body, or the body
// text, or the status, on one line with control characters escaped
// (cleanCell).
func errorMessage(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return cleanCell(e.Error)
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return cleanCell(s)
	}
	return cleanCell(resp.Status)
}

// connError says in words why a connection failed.
func connError(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing listens there (connection refused)"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "no answer in time (timeout)"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// getJSON decodes the JSON answer of GET path into v.
func (c *adminClient) getJSON(ctx context.Context, path string, v any) error {
	return c.callJSON(ctx, http.MethodGet, path, nil, v)
}

// callJSON sends a request expected to answer at once and decodes its JSON
// answer into v.
func (c *adminClient) callJSON(ctx context.Context, method, path string, body io.Reader, v any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s: %s %s: unexpected answer: %w", c.label, method, path, err)
	}
	return nil
}

// readiness reads http://hostport/readyz: "ready", "not ready",
// "draining" (the status the service reports) or "unreachable".
func readiness(ctx context.Context, hc *http.Client, hostport string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostport+"/readyz", nil)
	if err != nil {
		return "unreachable"
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "unreachable"
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body)
	switch {
	case resp.StatusCode == http.StatusOK:
		return "ready"
	case body.Status != "" && body.Status != "ready":
		return body.Status
	}
	return fmt.Sprintf("not ready (%d)", resp.StatusCode)
}

// target is how to name the service on svcctl's command line again: its
// name when known, else its address.
func (c *adminClient) target() string {
	if c.name != "" {
		return c.name
	}
	return strings.TrimPrefix(strings.TrimPrefix(c.base, "http://"), "https://")
}
