package main

import (
	"testing"
	"time"
)

const wrkOut = `Running 5s test @ http://127.0.0.1:8096/hello/ann
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   496.27us  302.10us  12.73ms   93.55%
    Req/Sec    64.81k     2.49k   68.84k    78.00%
  Latency Distribution
     50%  443.00us
     75%  528.00us
     90%  653.00us
     99%    1.48ms
  322467 requests in 5.00s, 39.98MB read
Requests/sec:  64493.40
Transfer/sec:      8.00MB
`

func TestParseWrk(t *testing.T) {
	got, err := parseWrk([]byte(wrkOut))
	if err != nil {
		t.Fatalf("parseWrk: %v", err)
	}
	want := wrkResult{rps: 64493.40, p99: 1480 * time.Microsecond, requests: 322467}
	if got != want {
		t.Errorf("parseWrk = %+v; want %+v", got, want)
	}
	for _, bad := range []string{
		wrkOut + "  Non-2xx or 3xx responses: 12\n",
		wrkOut + "  Socket errors: connect 0, read 3, write 0, timeout 0\n",
		"unable to connect to 127.0.0.1:8096 Connection refused\n",
	} {
		if _, err := parseWrk([]byte(bad)); err == nil {
			t.Errorf("parseWrk(%q) succeeded; want an error", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v; want %v", tt.in, got, tt.want)
		}
	}
}
