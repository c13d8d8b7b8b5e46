package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// startTimeout bounds how long a member may take to become ready.
const startTimeout = 30 * time.Second

// Server is one embedded etcd member listening on loopback.
//
// Its methods are safe for concurrent use. Stop and Restart keep the data
// directory and the ports, so clients built before a Stop reconnect after a
// Restart.
type Server struct {
	name           string
	dir            string
	clientURL      url.URL
	peerURL        url.URL
	initialCluster string
	baseToken      string // the token of the first cluster

	mu         sync.Mutex // guards the fields below
	etcd       *embed.Etcd
	token      string // cluster token: with the members, it makes the cluster id
	generation int    // how often ReplaceCluster ran
}

// Start starts a single-member etcd on loopback with free ports and a data
// directory under t.TempDir(). It fails the test if the member is not ready
// within 30 seconds. The member is stopped by t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	ports := freePorts(t, 2)
	s := newServer(t, "m0", ports[0], ports[1])
	s.initialCluster = s.name + "=" + s.peerURL.String()
	t.Cleanup(s.Stop)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startLocked(); err != nil {
		t.Fatal(err)
	}
	if err := s.waitReadyLocked(); err != nil {
		t.Fatal(err)
	}
	return s
}

func newServer(t testing.TB, name string, clientPort, peerPort int) *Server {
	return &Server{
		name:      name,
		dir:       t.TempDir(),
		clientURL: url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)},
		peerURL:   url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)},
		token:     fmt.Sprintf("etcdtest-%d", peerPort),
		baseToken: fmt.Sprintf("etcdtest-%d", peerPort),
	}
}

// Endpoints returns the member's client URL ("http://127.0.0.1:<port>") as
// a one-element slice for clientv3.Config.Endpoints.
func (s *Server) Endpoints() []string { return []string{s.clientURL.String()} }

// Client returns a client of this member, closed by t.Cleanup. See
// [NewClient].
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return NewClient(t, s.Endpoints()...)
}

// Running reports whether the member is started.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.etcd != nil
}

// Stop stops the member and waits until it has released its ports. It is a
// no-op if the member is stopped.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.etcd == nil {
		return
	}
	s.etcd.Close()
	s.etcd = nil
}

// Restart stops the member if it runs and starts it again on the same data
// directory and ports, failing the test if it is not ready within 30
// seconds. A member of a cluster is ready once it has rejoined a quorum.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	// The ports were ours a moment ago; a socket still closing may hold
	// them briefly.
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if err = s.startLocked(); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := s.waitReadyLocked(); err != nil {
		t.Fatal(err)
	}
}

// startLocked starts the member without waiting for it to be ready.
func (s *Server) startLocked() error {
	cfg := embed.NewConfig()
	cfg.Name = s.name
	cfg.Dir = s.dir
	cfg.ListenClientUrls = []url.URL{s.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{s.clientURL}
	cfg.ListenPeerUrls = []url.URL{s.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{s.peerURL}
	cfg.InitialCluster = s.initialCluster
	cfg.InitialClusterToken = s.token
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.LogLevel = "error"
	cfg.EnableGRPCGateway = false
	cfg.UnsafeNoFsync = true
	cfg.StrictReconfigCheck = false
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("etcdtest: start member %s: %w", s.name, err)
	}
	s.etcd = e
	return nil
}

func (s *Server) waitReadyLocked() error {
	e := s.etcd
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		e.Close()
		s.etcd = nil
		return fmt.Errorf("etcdtest: member %s: %w", s.name, err)
	case <-time.After(startTimeout):
		e.Close()
		s.etcd = nil
		return fmt.Errorf("etcdtest: member %s not ready after %s", s.name, startTimeout)
	}
}

// Cluster is a set of embedded etcd members forming one cluster.
type Cluster struct {
	// Members are the cluster's members; stop one with Members[i].Stop().
	Members []*Server
}

// StartCluster starts an n-member cluster on loopback and waits until every
// member is ready. All members are stopped by t.Cleanup.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("etcdtest: StartCluster(%d): need at least one member", n)
	}
	ports := freePorts(t, 2*n)
	c := &Cluster{}
	var initial []string
	for i := range n {
		s := newServer(t, fmt.Sprintf("m%d", i), ports[2*i], ports[2*i+1])
		c.Members = append(c.Members, s)
		initial = append(initial, s.name+"="+s.peerURL.String())
		t.Cleanup(s.Stop)
	}
	token := c.Members[0].token
	for _, s := range c.Members {
		s.initialCluster = strings.Join(initial, ",")
		s.token, s.baseToken = token, token
	}
	// Members block each other until a quorum is up: start all, then wait.
	for _, s := range c.Members {
		s.mu.Lock()
		err := s.startLocked()
		s.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range c.Members {
		s.mu.Lock()
		err := s.waitReadyLocked()
		s.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// Endpoints returns the client URLs of all members.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, s := range c.Members {
		eps = append(eps, s.Endpoints()...)
	}
	return eps
}

// Client returns a client of all members, closed by t.Cleanup.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return NewClient(t, c.Endpoints()...)
}

// NewClient returns a client of the given endpoints, closed by t.Cleanup.
// Its logger is silenced and its gRPC reconnect backoff is capped at one
// second, so that tests which stop and restart members do not wait for
// gRPC's default two-minute backoff.
func NewClient(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(ClientConfig(endpoints...))
	if err != nil {
		t.Fatalf("etcdtest: new client of %v: %v", endpoints, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// ClientConfig is the configuration [NewClient] uses, for a test that
// builds and closes its clients itself.
func ClientConfig(endpoints ...string) clientv3.Config {
	return clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  50 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   time.Second,
			},
			MinConnectTimeout: time.Second,
		})},
	}
}

// freePorts reserves n distinct free loopback ports. The ports are released
// before they are returned: another process could take one in between,
// which on a test machine is rare enough.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("etcdtest: reserve a port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// IgnoreServerGoroutines returns goleak options for the goroutines that
// embedded etcd members leave behind after they are stopped: the idle
// keep-alive HTTP connections between the members of a cluster (etcd's peer
// transport does not close them). Pass them to goleak.VerifyTestMain or
// goleak.VerifyNone in packages whose tests start clusters.
func IgnoreServerGoroutines() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		goleak.IgnoreAnyFunction("net/http.(*connReader).backgroundRead"),
	}
}
