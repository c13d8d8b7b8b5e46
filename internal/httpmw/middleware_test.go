package httpmw_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/svc-dev/svc/internal/accesslog"
	"github.com/svc-dev/svc/internal/httpmw"
)

type traceKey struct{}

// newPublic is a router behind New with every step, as svc's public
// server has it; lines closes the access log and returns its lines.
func newPublic(t *testing.T) (h http.Handler, reg *prometheus.Registry, lines func() []string) {
	t.Helper()
	o, reg, lines := everyStep(t)
	r := chi.NewRouter()
	r.Use(func(next http.Handler) http.Handler { // a tracing middleware's stand-in
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tid := r.Header.Get("Trace"); tid != "" {
				r = r.WithContext(context.WithValue(r.Context(), traceKey{}, tid))
			}
			next.ServeHTTP(w, r)
		})
	}, httpmw.New(o))
	r.Get("/id", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, httpmw.GetID(r.Context())) })
	r.Post("/read", readAll)
	r.Get("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	return r, reg, lines
}

// everyStep returns Options with every step as svc's public server has
// them (the trace id read from traceKey), the metrics' registry, and
// lines, which closes the access log and returns its lines.
func everyStep(t *testing.T) (httpmw.Options, *prometheus.Registry, func() []string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := httpmw.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w := accesslog.New(&out, accesslog.Options{Service: "svc-test"})
	t.Cleanup(func() { _ = w.Close() })
	return httpmw.Options{
			Server:       "public",
			CloseChunked: true,
			RequestID:    true,
			Metrics:      m,
			Access:       w,
			TraceID:      func(ctx context.Context) string { s, _ := ctx.Value(traceKey{}).(string); return s },
			Recover:      true,
			Log:          slog.New(slog.NewJSONHandler(io.Discard, nil)),
			MaxBodyBytes: 8,
		}, reg, func() []string {
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			return nonEmptyLines(out.String())
		}
}

type line struct {
	Msg, Server, Method, Route, Path string
	Status, Bytes                    int
	RequestID                        string `json:"request_id"`
	TraceID                          string `json:"trace_id"`
}

func TestNewOnePass(t *testing.T) {
	h, reg, lines := newPublic(t)

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/id", nil)
	req.Header.Set("Trace", "4bf92f3577b34da6a3ce929d0e0e4736")
	h.ServeHTTP(rec, req)
	id := rec.Header().Get(httpmw.RequestIDHeader)
	if id == "" || rec.Body.String() != id {
		t.Errorf("GET /id: header %q, GetID in the handler %q; want the same generated id", id, rec.Body.String())
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/read", strings.NewReader("123456789")))
	if rec.Code != http.StatusRequestEntityTooLarge || rec.Header().Get("Connection") != "close" ||
		!strings.Contains(rec.Body.String(), `"error":"request body too large: the limit is 8 bytes"`) {
		t.Errorf("POST 9 bytes over a limit of 8: %d %v %q; want the JSON 413 with Connection: close", rec.Code, rec.Header(), rec.Body.String())
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/panic", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("GET /panic: %d; want 500", rec.Code)
	}

	// A refused body never reaches the router: its route is unmatched.
	want := map[string]float64{"public GET /id 200": 1, "public POST unmatched 413": 1, "public GET /panic 500": 1}
	if got := counts(t, reg); len(got) != len(want) {
		t.Errorf("http_requests_total = %v; want %v", got, want)
	} else {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("http_requests_total{%s} = %v; want %v", k, got[k], v)
			}
		}
	}

	ls := lines()
	if len(ls) != 3 {
		t.Fatalf("%d access lines; want 3:\n%s", len(ls), strings.Join(ls, "\n"))
	}
	got := map[string]line{}
	for _, l := range ls {
		var d line
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("access line %s: %v", l, err)
		}
		got[d.Path] = d
		if d.Msg != "request" || d.Server != "public" || d.RequestID == "" {
			t.Errorf("access line %s: want msg request, server public and a request id", l)
		}
		if d.Path != "/id" && strings.Contains(l, "trace_id") {
			t.Errorf("access line %s has a trace_id; want none without a trace", l)
		}
	}
	if l := got["/id"]; l.Route != "/id" || l.Status != 200 || l.Bytes != len(id) || l.RequestID != id || l.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("GET /id access line %+v; want route /id, 200, %d bytes, request id %s, the trace id", l, len(id), id)
	}
	if got["/read"].Status != 413 || got["/panic"].Status != 500 {
		t.Errorf("access lines %+v; want 413 for /read and 500 for /panic", got)
	}
}

// http.ResponseController reaches net/http's writer through New's
// wrapper: deadlines, flushes and hijacking work.
func TestNewResponseController(t *testing.T) {
	m, err := httpmw.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	mw := httpmw.New(httpmw.Options{Server: "public", RequestID: true, Metrics: m, Recover: true, Log: slog.New(slog.DiscardHandler)})
	r := chi.NewRouter()
	r.Use(mw)
	r.Get("/flush", func(w http.ResponseWriter, _ *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline: %v", err)
		}
		if err := rc.EnableFullDuplex(); err != nil {
			t.Errorf("EnableFullDuplex: %v", err)
		}
		_, _ = io.WriteString(w, "first\n")
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		if _, ok := w.(http.Flusher); !ok {
			t.Error("the writer is no http.Flusher")
		}
	})
	r.Get("/hijack", func(w http.ResponseWriter, _ *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		_ = brw.Flush()
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	c := srv.Client()
	defer c.CloseIdleConnections()

	resp, err := c.Get(srv.URL + "/flush")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "first\n" || len(resp.TransferEncoding) == 0 {
		t.Errorf("GET /flush: %q, transfer encoding %v; want the flushed (chunked) body", body, resp.TransferEncoding)
	}

	resp, err = c.Get(srv.URL + "/hijack")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(bufio.NewReader(resp.Body))
	resp.Body.Close()
	if string(body) != "hijacked" {
		t.Errorf("GET /hijack: %q; want the hijacked connection's answer", body)
	}
}
