package connlimit_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/svc-dev/svc/internal/connlimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor polls cond until it holds; the test fails after a generous
// bound that only a broken listener reaches.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// listen returns a capped listener on a free loopback port.
func listen(t *testing.T, max int, opts ...connlimit.Option) *connlimit.Listener {
	t.Helper()
	l, err := connlimit.Listen("tcp", "127.0.0.1:0", max, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// serve serves h on l until the test ends.
func serve(t *testing.T, l *connlimit.Listener, h http.Handler) {
	t.Helper()
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

func dial(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends one GET / on c and reads the answer and its body.
func get(c net.Conn) (*http.Response, string, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		return nil, "", err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// wantShed checks that c got the 503 answer and was closed after it.
func wantShed(t *testing.T, c net.Conn) {
	t.Helper()
	resp, body, err := get(c)
	if err != nil {
		t.Fatalf("a connection past the cap: %v; want a 503 answer", err)
	}
	// resp.Close is the "Connection: close" header (ReadResponse removes it).
	if resp.StatusCode != http.StatusServiceUnavailable || !resp.Close || resp.Header.Get("Retry-After") != "1" ||
		resp.ContentLength != int64(len(body)) || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("shed answer = %d %v; want 503, Connection: close, Retry-After: 1, Content-Length, JSON", resp.StatusCode, resp.Header)
	}
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Errorf("shed body %q: want JSON {\"error\": ...}", body)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("after the 503: read %d, %v; want EOF (closed)", n, err)
	}
}

func TestCapAndShed(t *testing.T) {
	t.Parallel()
	for _, max := range []int{1, 3} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			t.Parallel()
			var shed atomic.Int64
			counter := prometheus.NewCounter(prometheus.CounterOpts{Name: "shed_total", Help: "h"})
			l := listen(t, max, connlimit.OnShed(func() { shed.Add(1) }), connlimit.WithShedCounter(counter))
			serve(t, l, ok)

			idle := make([]net.Conn, max)
			for i := range idle {
				idle[i] = dial(t, l)
			}
			waitFor(t, "the idle connections to be accepted", func() bool { return l.Active() == max })

			// Past the cap: a 503, then closed; the idle ones stay.
			for i := 1; i <= 2; i++ {
				wantShed(t, dial(t, l))
				if got := shed.Load(); got != int64(i) {
					t.Errorf("OnShed calls = %d; want %d", got, i)
				}
				if got := value(counter); got != float64(i) {
					t.Errorf("shed counter = %v; want %d", got, i)
				}
			}
			if l.Active() != max || l.Shed() != 2 {
				t.Errorf("Active, Shed = %d, %d; want %d, 2", l.Active(), l.Shed(), max)
			}

			// An idle connection within the cap is served.
			if resp, body, err := get(idle[0]); err != nil || resp.StatusCode != 200 || body != "ok" {
				t.Errorf("GET on an accepted connection = %v, %q, %v; want 200 ok", resp, body, err)
			}

			// Closing one frees its slot.
			idle[max-1].Close()
			waitFor(t, "the slot to be freed", func() bool { return l.Active() == max-1 })
			if resp, body, err := get(dial(t, l)); err != nil || resp.StatusCode != 200 || body != "ok" {
				t.Errorf("GET after a slot was freed = %v, %q, %v; want 200 ok", resp, body, err)
			}
		})
	}
}

// TestReleaseOnce: a connection's slot is freed by its first Close only,
// whoever calls it, hijacked connections included.
func TestReleaseOnce(t *testing.T) {
	t.Parallel()
	t.Run("accepted", func(t *testing.T) {
		t.Parallel()
		l := listen(t, 2)
		dial(t, l)
		dial(t, l)
		a, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		b, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if l.Active() != 2 {
			t.Fatalf("Active = %d; want 2", l.Active())
		}
		for i := range 3 {
			err := a.Close()
			if (i == 0) != (err == nil) {
				t.Errorf("Close #%d = %v; want nil the first time, an error after", i+1, err)
			}
			if l.Active() != 1 {
				t.Errorf("after Close #%d: Active = %d; want 1", i+1, l.Active())
			}
		}
		b.Close()
		if l.Active() != 0 {
			t.Errorf("Active = %d; want 0", l.Active())
		}
		if u, ok := a.(interface{ Unwrap() net.Conn }); !ok || u.Unwrap() == nil {
			t.Error("an accepted connection does not unwrap to the TCP connection")
		}
	})

	t.Run("hijacked", func(t *testing.T) {
		t.Parallel()
		l := listen(t, 1)
		serve(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
			buf.Flush()
			c.Close()
			c.Close()
		}))
		for range 3 { // each time the only slot is free again
			if resp, body, err := get(dial(t, l)); err != nil || resp.StatusCode != 200 || body != "hijacked" {
				t.Fatalf("GET = %v, %q, %v; want 200 hijacked", resp, body, err)
			}
			waitFor(t, "the hijacked connection's slot", func() bool { return l.Active() == 0 })
		}
	})
}

// TestConcurrent hammers a small cap: every request is served or shed,
// the count never leaves [0, max], and it returns to 0.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	const max, clients = 4, 64
	var served, answered503, dropped atomic.Int64
	var handlerErr atomic.Value
	var l *connlimit.Listener
	release := make(chan struct{})
	l = listen(t, max, connlimit.WithMaxShedding(8))
	serve(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := l.Active(); n < 1 || n > max {
			handlerErr.Store(fmt.Sprintf("Active = %d in a handler; want 1..%d", n, max))
		}
		<-release // hold the slot until every client has dialled
		w.Header().Set("Connection", "close")
		io.WriteString(w, "ok")
	}))

	var wg sync.WaitGroup
	var dialled sync.WaitGroup
	dialled.Add(clients)
	for range clients {
		wg.Go(func() {
			c, err := net.Dial("tcp", l.Addr().String())
			dialled.Done()
			if err != nil {
				dropped.Add(1)
				return
			}
			defer c.Close()
			resp, _, err := get(c)
			switch {
			case err != nil:
				dropped.Add(1) // closed with no answer: the shedding bound
			case resp.StatusCode == 200:
				served.Add(1)
			case resp.StatusCode == 503:
				answered503.Add(1)
			}
		})
	}
	dialled.Wait()
	waitFor(t, "every connection to be accepted or shed", func() bool {
		return l.Active() == max && int(l.Shed()) == clients-max
	})
	close(release)
	wg.Wait()
	waitFor(t, "every slot to be freed", func() bool { return l.Active() == 0 })

	if v := handlerErr.Load(); v != nil {
		t.Error(v)
	}
	if served.Load() != max || answered503.Load()+dropped.Load() != clients-max || answered503.Load() == 0 {
		t.Errorf("served %d, 503 %d, dropped %d; want %d served, %d shed, some answered",
			served.Load(), answered503.Load(), dropped.Load(), max, clients-max)
	}
}

// TestShedBounds: past the shedding bound, or with no response, excess
// connections are closed unanswered; a client that never closes holds a
// shedding goroutine no longer than the shed timeout; Close ends the
// answers in progress.
func TestShedBounds(t *testing.T) {
	t.Parallel()
	fill := func(t *testing.T, l *connlimit.Listener) {
		t.Helper()
		c := dial(t, l)
		go l.Accept() // hands out c: the cap is 1, the slot is taken
		_ = c
		waitFor(t, "the slot to be taken", func() bool { return l.Active() == 1 })
	}
	unanswered := func(t *testing.T, l *connlimit.Listener) {
		t.Helper()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			return // reset before connect returned: unanswered too
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
			t.Errorf("past the bound: read %d, %v; want the connection closed with no answer", n, err)
		}
	}

	for _, tc := range []struct {
		name string
		opt  connlimit.Option
	}{
		{"max-shedding-0", connlimit.WithMaxShedding(0)},
		{"no-response", connlimit.WithShedResponse(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := listen(t, 1, tc.opt)
			fill(t, l)
			go l.Accept() // accepts and sheds; ends when the test closes l
			unanswered(t, l)
			if l.Shed() != 1 {
				t.Errorf("Shed = %d; want 1", l.Shed())
			}
		})
	}

	t.Run("slow-client", func(t *testing.T) {
		t.Parallel()
		// The client reads the 503 and never closes: the shed timeout
		// closes the connection from our side, and the client's writes
		// then fail.
		l := listen(t, 1, connlimit.WithShedTimeout(50*time.Millisecond))
		fill(t, l)
		go l.Accept()
		c := dial(t, l)
		wantShed(t, c)
		closedByPeer(t, c)
	})

	t.Run("close-while-shedding", func(t *testing.T) {
		t.Parallel()
		l := listen(t, 1, connlimit.WithMaxShedding(1), connlimit.WithShedTimeout(time.Hour))
		fill(t, l)
		accepting := make(chan struct{})
		go func() {
			defer close(accepting)
			l.Accept()
		}()
		slow := dial(t, l) // answered, then held open by the client
		if resp, _, err := get(slow); err != nil || resp.StatusCode != 503 {
			t.Fatalf("first shed: %v, %v; want 503", resp, err)
		}
		unanswered(t, l) // the only shedder is busy with slow
		closed := make(chan error, 1)
		go func() { closed <- l.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("Close = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not end the answer in progress (its timeout is an hour)")
		}
		<-accepting
		closedByPeer(t, slow)
		if err := l.Close(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("second Close = %v; want net.ErrClosed", err)
		}
	})
}

// closedByPeer writes to c until a write fails: the peer closed it.
func closedByPeer(t *testing.T, c net.Conn) {
	t.Helper()
	waitFor(t, "the listener side to close the shed connection", func() bool {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		_, err := c.Write([]byte("x"))
		return err != nil && !isTimeout(err)
	})
}

// value reads a counter without a registry.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestShedResponse(t *testing.T) {
	t.Parallel()
	r := string(connlimit.ShedResponse)
	head, body, _ := strings.Cut(r, "\r\n\r\n")
	for _, h := range []string{"HTTP/1.1 503 Service Unavailable\r\n", "\r\nConnection: close\r\n", "\r\nRetry-After: 1\r\n",
		fmt.Sprintf("\r\nContent-Length: %d\r\n", len(body)) + "", "\r\nContent-Type: application/json\r\n"} {
		if !strings.Contains(head+"\r\n", h) {
			t.Errorf("ShedResponse lacks %q:\n%s", h, r)
		}
	}
}

func TestWrapErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		max  int
		opts []connlimit.Option
		want string
	}{
		{0, nil, "max 0: want at least 1"},
		{-1, nil, "max -1"},
		{1, []connlimit.Option{connlimit.WithMaxShedding(-1)}, "connlimit.WithMaxShedding(-1): -1 < 0"},
		{1, []connlimit.Option{connlimit.WithShedTimeout(0)}, "connlimit.WithShedTimeout(0s): 0s: want a positive duration"},
		{1, []connlimit.Option{connlimit.WithShedCounter(nil)}, "connlimit.WithShedCounter: nil counter"},
		{1, []connlimit.Option{connlimit.OnShed(nil)}, "connlimit.OnShed: nil func"},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, err = connlimit.Wrap(ln, tc.max, tc.opts...)
		ln.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "connlimit: ") {
			t.Errorf("Wrap(max %d, %v) = %v; want an error containing %q", tc.max, tc.opts, err, tc.want)
		}
	}
	if _, err := connlimit.Listen("tcp", "127.0.0.1:0", 1, connlimit.WithMaxShedding(-1)); err == nil {
		t.Error("Listen with a bad option: want an error")
	}
}
