package httpmw_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svc-dev/svc/internal/httpmw"
	"github.com/svc-dev/svc/svctest"
)

func TestRecoverer(t *testing.T) {
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		upgrade  bool
		wantCode int
		wantBody string // substring
		wantLog  string // substring of the error log; "" wants no log
	}{
		{
			name:     "no panic",
			handler:  func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "fine") },
			wantCode: http.StatusOK, wantBody: "fine",
		},
		{
			name:     "panic string",
			handler:  func(http.ResponseWriter, *http.Request) { panic("boom") },
			wantCode: http.StatusInternalServerError, wantBody: `{"error":"internal server error"}`,
			wantLog: "boom",
		},
		{
			name:     "panic error",
			handler:  func(http.ResponseWriter, *http.Request) { panic(errors.New("bad state")) },
			wantCode: http.StatusInternalServerError, wantBody: "internal server error",
			wantLog: "bad state",
		},
		{
			name:     "panic on upgrade writes nothing",
			handler:  func(http.ResponseWriter, *http.Request) { panic("ws boom") },
			upgrade:  true,
			wantCode: http.StatusOK, // the recorder's default: nothing was written
			wantLog:  "ws boom",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, nil))
			h := httpmw.RequestID()(httpmw.Recoverer(log)(tt.handler))
			req := httptest.NewRequest(http.MethodGet, "/p", nil)
			req.Header.Set(httpmw.RequestIDHeader, "req-1")
			if tt.upgrade {
				req.Header.Set("Connection", "Upgrade")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Errorf("status %d; want %d", rec.Code, tt.wantCode)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body %q; want it to contain %q", rec.Body.String(), tt.wantBody)
			}
			if tt.wantLog == "" {
				if logs.Len() != 0 {
					t.Errorf("logged %q; want nothing", logs.String())
				}
				return
			}
			var line struct {
				Level, Msg, Panic, Path, Stack string
				RequestID                      string `json:"request_id"`
			}
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("log %q: want one JSON line: %v", logs.String(), err)
			}
			if line.Level != "ERROR" || line.Msg != "panic in handler" {
				t.Errorf("log level, msg = %q, %q; want ERROR, \"panic in handler\"", line.Level, line.Msg)
			}
			if !strings.Contains(line.Panic, tt.wantLog) {
				t.Errorf("log panic = %q; want it to contain %q", line.Panic, tt.wantLog)
			}
			if line.Path != "/p" || line.RequestID != "req-1" {
				t.Errorf("log path, request_id = %q, %q; want /p, req-1", line.Path, line.RequestID)
			}
			if !strings.Contains(line.Stack, "recoverer_test.go") {
				t.Errorf("log stack does not show the panicking handler:\n%s", line.Stack)
			}
		})
	}
}

func TestRecovererRepanicsErrAbortHandler(t *testing.T) {
	var logs bytes.Buffer
	h := httpmw.Recoverer(slog.New(slog.NewJSONHandler(&logs, nil)))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	rec := httptest.NewRecorder()
	got := func() (v any) {
		defer func() { v = recover() }()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return nil
	}()
	if got != http.ErrAbortHandler { //nolint:errorlint // the sentinel itself must be re-panicked
		t.Errorf("recovered %v; want http.ErrAbortHandler re-panicked", got)
	}
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("response %d %q; want nothing written", rec.Code, rec.Body.String())
	}
	if logs.Len() != 0 {
		t.Errorf("logged %q; want nothing for an aborted response", logs.String())
	}
}

// TestRecovererOverHTTP checks the behaviour a client sees: a panic is a
// 500 and the server goes on; ErrAbortHandler drops the connection with no
// response at all.
func TestRecovererOverHTTP(t *testing.T) {
	var logs svctest.LogBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	mux := http.NewServeMux()
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	mux.HandleFunc("/abort", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "partial")
		panic(http.ErrAbortHandler)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv := httptest.NewUnstartedServer(httpmw.Recoverer(log)(mux))
	srv.Config.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	srv.Start()
	defer srv.Close()
	c := srv.Client()
	defer c.CloseIdleConnections()

	resp, err := c.Get(srv.URL + "/panic")
	if err != nil {
		t.Fatalf("GET /panic: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("GET /panic: status %d; want 500", resp.StatusCode)
	}

	resp, err = c.Get(srv.URL + "/abort")
	if err == nil {
		// Headers may have gone out; the body must then be cut short.
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Errorf("GET /abort: complete response; want the connection aborted")
	}

	resp, err = c.Get(srv.URL + "/ok")
	if err != nil {
		t.Fatalf("GET /ok after the panics: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /ok after the panics: status %d; want 200", resp.StatusCode)
	}
	if got := strings.Count(logs.String(), "panic in handler"); got != 1 {
		t.Errorf("logged %d panics; want 1 (ErrAbortHandler is not logged as one):\n%s", got, logs.String())
	}
}

// A panic after the headers went out cannot become a 500: the response is
// aborted, so the client sees a broken response, never one that looks
// complete with an error glued to its body. The panic is logged once.
func TestRecovererAbortsAfterHeaders(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		observe bool // behind Observe, as svc chains it
	}{
		{"header and body", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "partial")
			panic("boom")
		}, false},
		{"header only", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			panic("boom")
		}, false},
		{"flushed", func(w http.ResponseWriter, _ *http.Request) {
			_ = http.NewResponseController(w).Flush()
			panic("boom")
		}, false},
		{"behind Observe", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "partial")
			panic("boom")
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs svctest.LogBuffer
			log := slog.New(slog.NewJSONHandler(&logs, nil))
			var h http.Handler = httpmw.Recoverer(log)(tt.handler)
			if tt.observe {
				m, err := httpmw.NewMetrics(prometheus.NewRegistry())
				if err != nil {
					t.Fatal(err)
				}
				h = httpmw.Observe("public", m, log, nil)(h)
			}
			srv := httptest.NewUnstartedServer(h)
			srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelWarn)
			srv.Start()
			defer srv.Close()
			c := srv.Client()
			defer c.CloseIdleConnections()

			resp, err := c.Get(srv.URL + "/")
			if err == nil {
				body, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if rerr == nil {
					t.Errorf("complete response %d %q; want it aborted", resp.StatusCode, body)
				}
				if strings.Contains(string(body), "internal server error") {
					t.Errorf("body %q has the 500's JSON appended", body)
				}
			}
			svctest.WaitFor(t, 5*time.Second, "the panic to be logged", func() bool {
				return strings.Contains(logs.String(), "panic in handler")
			})
			if got := strings.Count(logs.String(), "panic in handler"); got != 1 {
				t.Errorf("logged %d panics; want 1:\n%s", got, logs.String())
			}
			if !strings.Contains(logs.String(), `"response_aborted":true`) {
				t.Errorf("log %s; want response_aborted true", logs.String())
			}
		})
	}
}
