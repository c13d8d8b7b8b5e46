package registry

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/svc-dev/svc/internal/convention"
)

// Record is one instance's advertisement: what a [Registrar] writes under
// [Record.Key] and what a [Discovery] reads back.
type Record struct {
	Name        string    // service name, e.g. "orders"
	ID          string    // instance id, unique within the service
	Environment string    // deployment, e.g. "dev"
	Host        string    // advertised host or IP address
	PublicPort  int       // public HTTP port
	PrivatePort int       // private HTTP port (health, metrics)
	AdminPort   int       // admin port
	URISpec     string    // URI template of the public API, e.g. "/1.x/{territory}/users/{userid}"
	Version     string    // build version
	StartedAt   time.Time // process start
}

// Prefix returns the key prefix under which the instances of service name
// in environment are registered: "svc/<environment>/services/<name>/". The
// trailing slash keeps a watch of "rand" from matching "randpro".
//
// Without its trailing slash the prefix is the target of etcd's
// naming/endpoints manager and gRPC resolver ("etcd:///svc/dev/services/orders").
func Prefix(environment, name string) string {
	return convention.ServicePrefix(environment, name)
}

// Key returns the instance's key: Prefix(r.Environment, r.Name) + r.ID.
func (r Record) Key() string { return Prefix(r.Environment, r.Name) + r.ID }

// Addr returns "host:public port", the Addr of the registry value.
func (r Record) Addr() string { return net.JoinHostPort(r.Host, strconv.Itoa(r.PublicPort)) }

// Validate reports the first field that makes r unusable as a registration:
// an empty name, id, environment or host, a name, id or environment with a
// '/', or a public port outside 1..65535.
func (r Record) Validate() error {
	for _, f := range []struct{ field, value string }{
		{"name", r.Name},
		{"id", r.ID},
		{"environment", r.Environment},
	} {
		if f.value == "" {
			return fmt.Errorf("registry: record %s is empty", f.field)
		}
		if strings.Contains(f.value, "/") {
			return fmt.Errorf("registry: record %s %q contains '/'", f.field, f.value)
		}
	}
	if r.Host == "" {
		return errors.New("registry: record host is empty")
	}
	if r.PublicPort < 1 || r.PublicPort > 65535 {
		return fmt.Errorf("registry: record public port %d is not in 1..65535", r.PublicPort)
	}
	return nil
}

// value is the registry value: the JSON format of etcd's
// go.etcd.io/etcd/client/v3/naming/endpoints (internal.Update), with the
// record as Metadata.
type value struct {
	Op       uint8    // 0: add (the only operation ever stored)
	Addr     string   // "host:public port"
	Metadata metadata //
}

// metadata is a Record in the registry value.
type metadata struct {
	Name        string `json:"name"`
	ID          string `json:"id"`
	Environment string `json:"environment"`
	Host        string `json:"host"`
	PublicPort  int    `json:"public_port"`
	PrivatePort int    `json:"private_port"`
	AdminPort   int    `json:"admin_port"`
	URISpec     string `json:"uri_spec"`
	Version     string `json:"version"`
	StartedAt   string `json:"started_at"` // RFC 3339 with nanoseconds
}

// MarshalValue returns the registry value of r:
//
//	{"Op":0,"Addr":"<host>:<public port>","Metadata":{"name":...,"started_at":"<RFC 3339>"}}
func (r Record) MarshalValue() ([]byte, error) {
	v := value{
		Op:   0,
		Addr: r.Addr(),
		Metadata: metadata{
			Name:        r.Name,
			ID:          r.ID,
			Environment: r.Environment,
			Host:        r.Host,
			PublicPort:  r.PublicPort,
			PrivatePort: r.PrivatePort,
			AdminPort:   r.AdminPort,
			URISpec:     r.URISpec,
			Version:     r.Version,
		},
	}
	if !r.StartedAt.IsZero() {
		v.Metadata.StartedAt = r.StartedAt.UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("registry: marshal record %s: %w", r.Key(), err)
	}
	return b, nil
}

// Instance is one discovered instance of a service.
type Instance struct {
	// Key is the instance's registry key; empty for an instance that comes
	// from an override or the port convention.
	Key string
	// Addr is "host:port" of the public listener.
	Addr string
	// BaseURL is "http://" + Addr, or the override's base URL.
	BaseURL string
	// Record is the advertisement, as far as the registry value holds it.
	Record Record
}

// ParseInstance decodes the registry value stored at key. It accepts any
// value in the naming/endpoints format whose Op is 0 (add) and whose Addr is
// a "host:port" with a numeric port, so that instances registered by other
// clients of that format are found too; Metadata it cannot read as a svc
// record is ignored. It returns an error for anything else.
func ParseInstance(key string, val []byte) (Instance, error) {
	var raw struct {
		Op       *uint8
		Addr     string
		Metadata json.RawMessage
	}
	if err := json.Unmarshal(val, &raw); err != nil {
		return Instance{}, fmt.Errorf("registry: value of %s: %w", key, err)
	}
	if raw.Op == nil || *raw.Op != 0 {
		return Instance{}, fmt.Errorf("registry: value of %s: Op is not 0 (add)", key)
	}
	host, port, err := net.SplitHostPort(raw.Addr)
	if err != nil {
		return Instance{}, fmt.Errorf("registry: value of %s: Addr %q: %w", key, raw.Addr, err)
	}
	pport, err := strconv.Atoi(port)
	if err != nil || pport < 1 || pport > 65535 || host == "" {
		return Instance{}, fmt.Errorf("registry: value of %s: Addr %q is not host:port", key, raw.Addr)
	}
	inst := Instance{
		Key:     key,
		Addr:    raw.Addr,
		BaseURL: "http://" + raw.Addr,
		Record:  Record{Host: host, PublicPort: pport},
	}
	var md metadata
	if len(raw.Metadata) > 0 && json.Unmarshal(raw.Metadata, &md) == nil {
		inst.Record = Record{
			Name:        md.Name,
			ID:          md.ID,
			Environment: md.Environment,
			Host:        host,
			PublicPort:  pport,
			PrivatePort: md.PrivatePort,
			AdminPort:   md.AdminPort,
			URISpec:     md.URISpec,
			Version:     md.Version,
		}
		if t, err := time.Parse(time.RFC3339Nano, md.StartedAt); err == nil {
			inst.Record.StartedAt = t
		}
	}
	// Fill what the metadata lacks from the key's layout
	// "svc/<environment>/services/<name>/<id>".
	if parts := strings.SplitN(key, "/", 5); len(parts) == 5 && parts[0] == "svc" && parts[2] == "services" {
		r := &inst.Record
		r.Environment = cmp.Or(r.Environment, parts[1])
		r.Name = cmp.Or(r.Name, parts[3])
		r.ID = cmp.Or(r.ID, parts[4])
	}
	return inst, nil
}
