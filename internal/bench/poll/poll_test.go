package poll

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func TestOK(t *testing.T) {
	t.Run("answers 200 after two 503s", func(t *testing.T) {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if n.Add(1) <= 2 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}))
		defer srv.Close()
		if _, err := OK(srv.URL, time.Now().Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := n.Load(); got != 3 {
			t.Errorf("%d requests; want 3 (two 503s, then the 200)", got)
		}
	})
	t.Run("port that starts listening later", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens now
		if accepts(mustAddrPort(t, addr)) {
			t.Fatalf("accepts(%s) = true with nothing listening", addr)
		}
		srv := &httptest.Server{Config: &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}}
		started := make(chan struct{})
		defer func() { <-started; srv.Close() }()
		go func() {
			defer close(started)
			time.Sleep(20 * time.Millisecond) // orders events only: the test passes either way
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			srv.Listener = ln
			srv.Start()
		}()
		if _, err := OK("http://"+addr+"/", time.Now().Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("nothing listens: fails at the deadline", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, err := OK("http://"+addr+"/", time.Now().Add(5*time.Millisecond)); err == nil {
			t.Fatal("OK = nil with nothing listening; want an error")
		}
	})
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}
