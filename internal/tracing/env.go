package tracing

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The standard variables New reads through Options.Getenv
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
const (
	EnvSDKDisabled       = "OTEL_SDK_DISABLED"
	EnvTracesExporter    = "OTEL_TRACES_EXPORTER"
	EnvEndpoint          = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint    = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol          = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol    = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvHeaders           = "OTEL_EXPORTER_OTLP_HEADERS"
	EnvTracesHeaders     = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
	EnvTimeout           = "OTEL_EXPORTER_OTLP_TIMEOUT"
	EnvTracesTimeout     = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
	EnvCompression       = "OTEL_EXPORTER_OTLP_COMPRESSION"
	EnvTracesCompression = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"
	EnvCertificate       = "OTEL_EXPORTER_OTLP_CERTIFICATE"
	EnvTracesCertificate = "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"
	EnvClientCert        = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
	EnvTracesClientCert  = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"
	EnvClientKey         = "OTEL_EXPORTER_OTLP_CLIENT_KEY"
	EnvTracesClientKey   = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"
	EnvServiceName       = "OTEL_SERVICE_NAME"
	EnvResourceAttrs     = "OTEL_RESOURCE_ATTRIBUTES"
	EnvSampler           = "OTEL_TRACES_SAMPLER"
	EnvSamplerArg        = "OTEL_TRACES_SAMPLER_ARG"
)

// settings is what the variables ask for. A zero endpoint means export off.
type settings struct {
	off         string // why export is off, for the log line; "" when on
	endpoint    string // the full URL spans are posted to: no user info, no query
	stripped    string // the endpoint variable, when its user info or query was left out
	headers     map[string]string
	timeout     time.Duration // 0: the exporter's default (10s)
	gzip        bool
	tls         *tls.Config // nil: the system's roots, no client certificate
	sampler     sdktrace.Sampler
	samplerName string
	serviceName string
	attrs       []attribute.KeyValue // from OTEL_RESOURCE_ATTRIBUTES
}

// readSettings decodes the variables. An empty value counts as unset, as
// the specification says. Malformed values are errors naming the variable:
// a service never starts with tracing half-configured.
func readSettings(getenv func(string) (string, bool), service string) (settings, error) {
	get := func(k string) string { v, _ := getenv(k); return strings.TrimSpace(v) }
	// first returns the first variable of keys that is set, and its name.
	first := func(keys ...string) (string, string) {
		for _, k := range keys {
			if v := get(k); v != "" {
				return v, k
			}
		}
		return "", ""
	}
	var s settings
	if strings.EqualFold(get(EnvSDKDisabled), "true") {
		s.off = EnvSDKDisabled + "=true"
		return s, nil
	}
	switch v := get(EnvTracesExporter); strings.ToLower(v) {
	case "", "otlp":
	case "none":
		s.off = EnvTracesExporter + "=none"
		return s, nil
	default:
		return s, fmt.Errorf("tracing: %s=%q: want otlp or none (svc exports OTLP over HTTP only)", EnvTracesExporter, v)
	}
	raw, key := first(EnvTracesEndpoint, EnvEndpoint)
	if raw == "" {
		s.off = "neither " + EnvEndpoint + " nor " + EnvTracesEndpoint + " is set"
		return s, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return s, fmt.Errorf("tracing: %s=%q: want an http:// or https:// URL such as http://localhost:4318", key, raw)
	}
	switch {
	case key == EnvEndpoint:
		// A base URL: traces go to <base>/v1/traces.
		u.Path = path.Join("/", u.Path, "v1/traces")
	case u.Path == "":
		// A per-signal URL is used as is, an empty path meaning "/".
		u.Path = "/"
	}
	// As otlptracehttp did: the collector gets scheme, host and path;
	// credentials belong in the headers variables, and the URL is logged.
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		s.stripped = key
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	s.endpoint = u.String()

	if v, k := first(EnvTracesProtocol, EnvProtocol); v != "" && v != "http/protobuf" {
		return s, fmt.Errorf("tracing: %s=%q: svc exports http/protobuf only (port 4318, not gRPC's 4317)", k, v)
	}
	for _, k := range []string{EnvHeaders, EnvTracesHeaders} { // the per-signal one wins
		h, err := parseList(get(k))
		if err != nil {
			return s, fmt.Errorf("tracing: %s: %w", k, err)
		}
		for _, kv := range h {
			if s.headers == nil {
				s.headers = map[string]string{}
			}
			s.headers[kv[0]] = kv[1]
		}
	}
	if v, k := first(EnvTracesTimeout, EnvTimeout); v != "" {
		ms, err := strconv.ParseUint(v, 10, 32)
		if err != nil || ms == 0 {
			return s, fmt.Errorf("tracing: %s=%q: want a positive number of milliseconds", k, v)
		}
		s.timeout = time.Duration(ms) * time.Millisecond
	}
	if v, k := first(EnvTracesCompression, EnvCompression); v != "" {
		switch v {
		case "gzip":
			s.gzip = true
		case "none":
		default:
			return s, fmt.Errorf("tracing: %s=%q: want gzip or none", k, v)
		}
	}

	if s.tls, err = readTLS(first); err != nil {
		return s, err
	}
	s.sampler, s.samplerName, err = parseSampler(get(EnvSampler), get(EnvSamplerArg))
	if err != nil {
		return s, err
	}
	s.serviceName = service
	if v := get(EnvServiceName); v != "" {
		s.serviceName = v
	}
	kvs, err := parseList(get(EnvResourceAttrs))
	if err != nil {
		return s, fmt.Errorf("tracing: %s: %w", EnvResourceAttrs, err)
	}
	for _, kv := range kvs {
		s.attrs = append(s.attrs, attribute.String(kv[0], kv[1]))
	}
	return s, nil
}

// parseSampler builds the sampler OTEL_TRACES_SAMPLER names, with the
// SDK's own rules (sdk/trace/sampler_env.go), except that a bad value is
// an error rather than a logged fallback. The SDK would read these two
// variables itself, but only from the process environment: svc reads
// them through Options.Getenv like every other variable.
func parseSampler(name, arg string) (sdktrace.Sampler, string, error) {
	ratio := func() (sdktrace.Sampler, error) {
		if arg == "" {
			return sdktrace.TraceIDRatioBased(1), nil
		}
		f, err := strconv.ParseFloat(arg, 64)
		if err != nil || f < 0 || f > 1 {
			return nil, fmt.Errorf("tracing: %s=%q: want a ratio from 0 to 1", EnvSamplerArg, arg)
		}
		return sdktrace.TraceIDRatioBased(f), nil
	}
	name = strings.ToLower(name)
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), "parentbased_always_on", nil
	case "always_on":
		return sdktrace.AlwaysSample(), name, nil
	case "always_off":
		return sdktrace.NeverSample(), name, nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), name, nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, "", err
		}
		if name == "parentbased_traceidratio" {
			r = sdktrace.ParentBased(r)
		}
		return r, name + "(" + cmp.Or(arg, "1") + ")", nil
	}
	return nil, "", fmt.Errorf("tracing: %s=%q: want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", EnvSampler, name)
}

// parseList parses the "key1=value1,key2=value2" lists of
// OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS, whose keys and
// values are percent-decoded. Errors name the entry by its position, never
// its text: a header may carry a credential.
func parseList(s string) ([][2]string, error) {
	var out [][2]string
	if s == "" {
		return out, nil
	}
	for i, item := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		var kerr, verr error
		k, kerr = url.PathUnescape(k)
		v, verr = url.PathUnescape(v)
		if !ok || k == "" || kerr != nil || verr != nil {
			return nil, fmt.Errorf("entry %d of the list: want key=value, percent-encoded", i+1)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// readTLS loads the files the certificate variables name: a CA bundle
// (PEM) that replaces the system's roots, and a client certificate and
// key for mutual TLS. first is readSettings' lookup.
func readTLS(first func(...string) (string, string)) (*tls.Config, error) {
	ca, caKey := first(EnvTracesCertificate, EnvCertificate)
	cert, certKey := first(EnvTracesClientCert, EnvClientCert)
	key, keyKey := first(EnvTracesClientKey, EnvClientKey)
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	cfg := &tls.Config{}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("tracing: %s: %w", caKey, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tracing: %s=%s: no PEM certificate in the file", caKey, ca)
		}
	}
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("tracing: %s and %s go together", cmp.Or(certKey, EnvClientCert), cmp.Or(keyKey, EnvClientKey))
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("tracing: %s, %s: %w", certKey, keyKey, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
