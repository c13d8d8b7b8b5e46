package tracing

import (
	"strings"
	"testing"
	"time"
)

func getenv(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestReadSettingsEndpoint(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string // the URL spans are posted to; "" export off
	}{
		{map[string]string{}, ""},
		{map[string]string{EnvEndpoint: ""}, ""}, // empty is unset
		{map[string]string{EnvEndpoint: "http://c:4318"}, "http://c:4318/v1/traces"},
		{map[string]string{EnvEndpoint: "https://c:4318/otlp/"}, "https://c:4318/otlp/v1/traces"},
		{map[string]string{EnvTracesEndpoint: "http://c:4318/custom"}, "http://c:4318/custom"},
		{map[string]string{EnvTracesEndpoint: "http://c:4318"}, "http://c:4318/"},
		{map[string]string{EnvEndpoint: "http://a:1", EnvTracesEndpoint: "http://b:2/t"}, "http://b:2/t"},
		{map[string]string{EnvEndpoint: "http://a:1", EnvSDKDisabled: "TRUE"}, ""},
		{map[string]string{EnvEndpoint: "http://a:1", EnvSDKDisabled: "false"}, "http://a:1/v1/traces"},
		{map[string]string{EnvEndpoint: "http://a:1", EnvTracesExporter: "none"}, ""},
		{map[string]string{EnvEndpoint: "http://a:1", EnvTracesExporter: "otlp", EnvProtocol: "http/protobuf"}, "http://a:1/v1/traces"},
		// User info, query and fragment are not sent (as otlptracehttp):
		// credentials go in the headers variables.
		{map[string]string{EnvEndpoint: "http://u:p@a:1/base?api_key=k#f"}, "http://a:1/base/v1/traces"},
		{map[string]string{EnvTracesEndpoint: "https://u@b:2/t?"}, "https://b:2/t"},
	} {
		s, err := readSettings(getenv(tc.env), "svc")
		if err != nil {
			t.Errorf("readSettings(%v): %v", tc.env, err)
			continue
		}
		if s.endpoint != tc.want {
			t.Errorf("readSettings(%v).endpoint = %q; want %q", tc.env, s.endpoint, tc.want)
		}
	}
}

func TestReadSettingsValues(t *testing.T) {
	s, err := readSettings(getenv(map[string]string{
		EnvEndpoint:       "http://c:4318",
		EnvHeaders:        "a=1,b=two%20words",
		EnvTracesHeaders:  "b=3",
		EnvTimeout:        "2500",
		EnvCompression:    "gzip",
		EnvServiceName:    "other",
		EnvResourceAttrs:  "team=core, region=eu%2Dwest",
		EnvSampler:        "ParentBased_TraceIDRatio",
		EnvSamplerArg:     "0.25",
		"UNRELATED_THING": "x",
	}), "svc")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.headers["a"] + "," + s.headers["b"]; got != "1,3" {
		t.Errorf("headers a,b = %s; want 1,3 (the per-signal variable wins)", got)
	}
	if s.timeout != 2500*time.Millisecond || !s.gzip || s.serviceName != "other" {
		t.Errorf("timeout, gzip, service = %v, %v, %q; want 2.5s, true, other", s.timeout, s.gzip, s.serviceName)
	}
	if len(s.attrs) != 2 || s.attrs[1].Value.AsString() != "eu-west" {
		t.Errorf("resource attributes = %v; want team=core, region=eu-west", s.attrs)
	}
	if s.samplerName != "parentbased_traceidratio(0.25)" {
		t.Errorf("sampler = %s; want parentbased_traceidratio(0.25)", s.samplerName)
	}
}

func TestReadSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string // in the error
	}{
		{map[string]string{EnvEndpoint: "localhost:4318"}, EnvEndpoint},
		{map[string]string{EnvTracesEndpoint: "ftp://c"}, EnvTracesEndpoint},
		{map[string]string{EnvEndpoint: "http://c", EnvProtocol: "grpc"}, "http/protobuf only"},
		{map[string]string{EnvEndpoint: "http://c", EnvTracesExporter: "zipkin"}, EnvTracesExporter},
		{map[string]string{EnvEndpoint: "http://c", EnvHeaders: "api-key"}, EnvHeaders},
		{map[string]string{EnvEndpoint: "http://c", EnvTimeout: "10s"}, EnvTimeout},
		{map[string]string{EnvEndpoint: "http://c", EnvCompression: "zstd"}, EnvCompression},
		{map[string]string{EnvEndpoint: "http://c", EnvSampler: "sometimes"}, EnvSampler},
		{map[string]string{EnvEndpoint: "http://c", EnvSampler: "traceidratio", EnvSamplerArg: "2"}, EnvSamplerArg},
		{map[string]string{EnvEndpoint: "http://c", EnvResourceAttrs: "=x"}, EnvResourceAttrs},
	} {
		_, err := readSettings(getenv(tc.env), "svc")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("readSettings(%v) error = %v; want one naming %s", tc.env, err, tc.want)
		}
	}
}

func TestHeaderErrorHidesTheValue(t *testing.T) {
	_, err := readSettings(getenv(map[string]string{EnvEndpoint: "http://c", EnvHeaders: "ok=1,secret-token-value"}), "svc")
	if err == nil || strings.Contains(err.Error(), "secret-token-value") {
		t.Errorf("error = %v; want one that does not echo the header", err)
	}
}
