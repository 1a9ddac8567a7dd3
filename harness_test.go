package uxp

// The root's one test harness: the handlers that record what a session
// sees (recordConn, recordServer, laneRecorder, connCollector), the
// simulated networks (simPair, simServer, dialerNet on internal/netsim),
// loopback sockets, handshake helpers for pure-code tests, and the
// hand-built endpoint's owner (nopOwner) and test hooks (hooksOf). The
// tests' names for internal/wire and internal/handshake live in
// names_test.go.

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flynn/noise"
	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/handshake"
	"github.com/uxp-go/uxp/internal/netsim"
	"github.com/uxp-go/uxp/internal/testutil"
)

// recordConn is a ConnHandler that records everything it sees. Messages
// are copied, since data is only valid during the callback.
type recordConn struct {
	mu      sync.Mutex
	ready   int
	msgs    [][]byte
	closed  []error
	echo    bool
	onData  func(c *Conn, data []byte)
	onReady func(c *Conn)
	gotMsg  chan struct{} // signalled (non-blocking) on every message
}

func newRecordConn() *recordConn { return &recordConn{gotMsg: make(chan struct{}, 1)} }

func (r *recordConn) OnReady(c *Conn) {
	r.mu.Lock()
	r.ready++
	f := r.onReady
	r.mu.Unlock()
	if f != nil {
		f(c)
	}
}

func (r *recordConn) OnNewDataComing(c *Conn, data []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, append([]byte(nil), data...))
	f := r.onData
	r.mu.Unlock()
	if r.echo {
		if _, err := c.Write(data); err != nil {
			panic(fmt.Sprintf("echo write: %v", err))
		}
	}
	if f != nil {
		f(c, data)
	}
	select {
	case r.gotMsg <- struct{}{}:
	default:
	}
}

func (r *recordConn) OnClosed(c *Conn, err error) {
	r.mu.Lock()
	r.closed = append(r.closed, err)
	r.mu.Unlock()
}

func (r *recordConn) snapshot() (ready int, msgs [][]byte, closed []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready, append([][]byte(nil), r.msgs...), append([]error(nil), r.closed...)
}

// recordServer is a ServerHandler that gives every session its own
// recordConn (built by newConn) and records server events.
type recordServer struct {
	mu        sync.Mutex
	newConn   func() *recordConn
	conns     []*Conn
	handlers  []*recordConn
	connClose []error
	closed    []error
}

func (s *recordServer) OnNewConnComing(c *Conn) {
	h := newRecordConn()
	if s.newConn != nil {
		h = s.newConn()
	}
	c.SetHandler(h)
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.handlers = append(s.handlers, h)
	s.mu.Unlock()
}

func (s *recordServer) OnConnClosed(c *Conn, err error) {
	s.mu.Lock()
	s.connClose = append(s.connClose, err)
	s.mu.Unlock()
}

func (s *recordServer) OnClosed(err error) {
	s.mu.Lock()
	s.closed = append(s.closed, err)
	s.mu.Unlock()
}

func (s *recordServer) counts() (conns, connClosed, closed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns), len(s.connClose), len(s.closed)
}

func (s *recordServer) handler(i int) *recordConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handlers[i]
}

// simPair is a server and a client on an in-memory netsim network. Build it
// inside a synctest bubble so that time is virtual and runs are
// deterministic.
type simPair struct {
	net    *netsim.Network
	srvPC  *netsim.PacketConn
	cliPC  *netsim.PacketConn
	srv    *Server
	srvH   *recordServer
	cli    *Client
	cliH   *recordConn
	keys   KeyPair
	srvCfg *Config
	cliCfg *Config
}

func testKeys(t testing.TB) KeyPair {
	t.Helper()
	kp, err := GenerateKey()
	require.NoError(t, err)
	return kp
}

// newSimPair starts a server; the client is created but not started when
// start is false.
func newSimPair(t testing.TB, seed uint64, srvCfg, cliCfg *Config, start bool) *simPair {
	t.Helper()
	p := &simPair{net: netsim.NewNetwork(seed), keys: testKeys(t), srvH: &recordServer{}, cliH: newRecordConn()}
	t.Cleanup(func() { p.net.Close() })
	srvCfg = srvCfg.Clone()
	srvCfg.PrivateKey = p.keys.Private
	cliCfg = cliCfg.Clone()
	if cliCfg.ServerPublicKey.IsZero() {
		cliCfg.ServerPublicKey = p.keys.Public
	}
	p.srvCfg, p.cliCfg = srvCfg, cliCfg
	var err error
	p.srvPC, err = p.net.Listen("10.0.0.1:4000")
	require.NoError(t, err)
	p.cliPC, err = p.net.Listen("10.0.0.2:5000")
	require.NoError(t, err)
	p.srv, err = NewServer(p.srvPC, p.srvH, srvCfg)
	require.NoError(t, err)
	require.NoError(t, p.srv.Start())
	t.Cleanup(func() { p.srv.Close() })
	p.cli, err = NewClient(p.cliPC, p.srvPC.LocalAddr(), p.cliH, cliCfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.cli.Close() })
	if start {
		require.NoError(t, p.cli.Start(context.Background()))
	}
	return p
}

// nopOwner owns an endpoint a test builds by hand (newEndpoint without a
// Server, Client or Dialer): it takes no handshake messages and admits
// every session.
type nopOwner struct{ dialSide }

func (nopOwner) onResponse([]byte, netip.AddrPort) bool         { return false }
func (nopOwner) onControl(*packetBuf, int, netip.AddrPort) bool { return false }

// hooksOf returns c's test hooks (hooks.go), allocating them on first use.
func hooksOf(c *Config) *testHooks {
	if c.hooks == nil {
		c.hooks = &testHooks{}
	}
	return c.hooks
}

func newLoopbackPC(t testing.TB) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	return pc
}

func serverStatic(kp KeyPair) *handshake.StaticKey {
	k, err := newStaticKey(kp.Private)
	if err != nil {
		panic(err)
	}
	return k
}

// newSeededReader is a deterministic io.Reader for pure-code tests.
var newSeededReader = testutil.SeededReader

func testInitiation(t testing.TB, server PublicKey, id clientIdentity) *clientHandshake {
	t.Helper()
	c, err := newClientHandshake(server, ChaCha20Poly1305, fecParams{}, 7, time.Unix(1000, 0), crand.Reader, id, helloParams{})
	require.NoError(t, err)
	return c
}

func ptr[T any](v T) *T { return &v }

func testStatic(t testing.TB) *noise.DHKey {
	t.Helper()
	return ptr(dhKey(testKeys(t)))
}

func dhKey(kp KeyPair) noiseDHKey {
	return noiseDHKey{Private: kp.Private[:], Public: kp.Public[:]}
}

type noiseDHKey = noise.DHKey

// waitFor polls cond in virtual time, failing after a minute.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		require.True(t, time.Now().Before(deadline), "condition not met in time")
		time.Sleep(10 * time.Millisecond)
	}
}

// dialerNet is servers and a Dialer on one netsim network, inside a
// synctest bubble.
type dialerNet struct {
	net     *netsim.Network
	keys    KeyPair
	servers []*Server
	addrs   []net.Addr
	d       *Dialer
}

func newDialerNet(t *testing.T, seed uint64, servers int, imp netsim.Impairment, cfg *Config) *dialerNet {
	t.Helper()
	n := &dialerNet{net: netsim.NewNetwork(seed), keys: testKeys(t)}
	t.Cleanup(func() { n.net.Close() })
	n.net.SetDefault(imp)
	for i := range servers {
		pc, err := n.net.Listen(fmt.Sprintf("10.0.1.%d:4000", i+1))
		require.NoError(t, err)
		srv, err := NewServer(pc, echoServer{}, &Config{PrivateKey: n.keys.Private})
		require.NoError(t, err)
		require.NoError(t, srv.Start())
		t.Cleanup(func() { srv.Close() })
		n.servers = append(n.servers, srv)
		n.addrs = append(n.addrs, pc.LocalAddr())
	}
	pc, err := n.net.Listen("10.0.2.1:5000")
	require.NoError(t, err)
	cfg = cfg.Clone()
	cfg.ServerPublicKey = n.keys.Public
	n.d, err = NewDialer(pc, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { n.d.Close() })
	return n
}

// simServer is a server on a netsim network with a ServerHandler of the
// test's choosing, and clients dialled to it one by one. Build it inside a
// synctest bubble.
type simServer struct {
	net    *netsim.Network
	srv    *Server
	addr   net.Addr
	cliCfg *Config
}

func newSimServer(t testing.TB, seed uint64, h ServerHandler, srvCfg, cliCfg *Config) *simServer {
	t.Helper()
	kp := testKeys(t)
	n := &simServer{net: netsim.NewNetwork(seed)}
	t.Cleanup(func() { n.net.Close() })
	srvCfg = srvCfg.Clone()
	srvCfg.PrivateKey = kp.Private
	n.cliCfg = cliCfg.Clone()
	n.cliCfg.ServerPublicKey = kp.Public
	pc, err := n.net.Listen("10.0.0.1:4000")
	require.NoError(t, err)
	n.addr = pc.LocalAddr()
	n.srv, err = NewServer(pc, h, srvCfg)
	require.NoError(t, err)
	require.NoError(t, n.srv.Start())
	t.Cleanup(func() { n.srv.Close() })
	return n
}

// dial connects client i (address 10.0.(1+i/250).(1+i%250):5000) with
// handler h.
func (n *simServer) dial(t testing.TB, i int, h ConnHandler) *Client {
	t.Helper()
	pc, err := n.net.Listen(fmt.Sprintf("10.0.%d.%d:5000", 1+i/250, 1+i%250))
	require.NoError(t, err)
	cl, err := NewClient(pc, n.addr, h, n.cliCfg)
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	require.NoError(t, cl.Start(context.Background()))
	return cl
}

// connCollector is a ServerHandler that keeps the announced sessions, and
// gives each a handler from newConn (nil: a NopHandler).
type connCollector struct {
	NopServerHandler
	newConn func(c *Conn) ConnHandler
	mu      sync.Mutex
	conns   []*Conn
}

func (s *connCollector) OnNewConnComing(c *Conn) {
	if s.newConn != nil {
		c.SetHandler(s.newConn(c))
	}
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
}

func (s *connCollector) list() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Conn(nil), s.conns...)
}

// newLoopbackDialer is a Dialer on a 127.0.0.1 UDP socket for servers of
// public key pub.
func newLoopbackDialer(t testing.TB, pub PublicKey) *Dialer {
	t.Helper()
	d, err := NewDialer(newLoopbackPC(t), &Config{ServerPublicKey: pub})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// messagesSent totals the messages the server's workers took into KCP,
// without Server.Stats' walk over every session.
func messagesSent(s *Server) uint64 {
	var n uint64
	for _, sh := range s.ep.shards {
		n += sh.traffic.msgsOut.Load()
	}
	return n
}

// laneEvent is one message or datagram as a laneRecorder saw it.
type laneEvent struct {
	lane int // -1 for a datagram
	data []byte
	at   time.Time
}

// laneRecorder records every lane message and datagram with its arrival
// time (virtual inside synctest).
type laneRecorder struct {
	NopHandler
	mu     sync.Mutex
	msgs   []laneEvent
	dgrams []laneEvent
}

func (r *laneRecorder) OnNewLaneDataComing(c *Conn, lane int, data []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, laneEvent{lane, append([]byte(nil), data...), time.Now()})
	r.mu.Unlock()
}

func (r *laneRecorder) OnNewDatagramComing(c *Conn, msg []byte) {
	r.mu.Lock()
	r.dgrams = append(r.dgrams, laneEvent{-1, append([]byte(nil), msg...), time.Now()})
	r.mu.Unlock()
}

func (r *laneRecorder) snapshot() (msgs, dgrams []laneEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs), slices.Clone(r.dgrams)
}

// onLane returns the messages of one lane.
func onLane(evs []laneEvent, lane int) []laneEvent {
	var out []laneEvent
	for _, e := range evs {
		if e.lane == lane {
			out = append(out, e)
		}
	}
	return out
}

// serverRecorder makes every server session report to the returned
// laneRecorder (from OnReady, before any message can be delivered).
func serverRecorder(p *simPair) *laneRecorder {
	rec := &laneRecorder{}
	p.srvH.newConn = func() *recordConn {
		r := newRecordConn()
		r.onReady = func(c *Conn) { c.SetHandler(rec) }
		return r
	}
	return rec
}

// stampedMessage is message i of a stream: index, send time (virtual ns),
// then filler up to size bytes.
func stampedMessage(i, size int) []byte {
	b := make([]byte, max(size, 12))
	binary.LittleEndian.PutUint32(b, uint32(i))
	binary.LittleEndian.PutUint64(b[4:], uint64(time.Now().UnixNano()))
	for j := 12; j < len(b); j++ {
		b[j] = byte(i + j)
	}
	return b
}

func stampIndex(b []byte) int                { return int(binary.LittleEndian.Uint32(b)) }
func stampSent(b []byte) time.Time           { return time.Unix(0, int64(binary.LittleEndian.Uint64(b[4:]))) }
func stampLatency(e laneEvent) time.Duration { return e.at.Sub(stampSent(e.data)) }

// laneDropper returns a dropLane hook that drops the given fraction of
// one lane's frames, deterministically.
func laneDropper(lane int, loss float64, seed uint64) func(int, []byte) bool {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, 99))
	return func(l int, _ []byte) bool {
		if l != lane {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		return r.Float64() < loss
	}
}

// percentile returns the p-th percentile (0..1) of ds, nearest rank.
func percentile(t testing.TB, ds []time.Duration, p float64) time.Duration {
	t.Helper()
	require.NotEmpty(t, ds)
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// withRand injects the handshakes' randomness (the rand test hook).
func withRand(c *Config, r io.Reader) { hooksOf(c).rand = r }

// recordingPC records every datagram written through it.
type recordingPC struct {
	net.PacketConn
	mu      sync.Mutex
	written [][]byte
}

func (r *recordingPC) WriteTo(p []byte, addr net.Addr) (int, error) {
	r.mu.Lock()
	r.written = append(r.written, append([]byte(nil), p...))
	r.mu.Unlock()
	return r.PacketConn.WriteTo(p, addr)
}

func (r *recordingPC) first(kind byte) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.written {
		if len(b) > 0 && b[0] == kind {
			return b
		}
	}
	return nil
}

// all returns every datagram written so far.
func (r *recordingPC) all() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.written...)
}

// addClient starts another client of p's server from addr.
func (p *simPair) addClient(t testing.TB, addr string, cfg *Config) (*Client, *recordingPC, error) {
	t.Helper()
	pc, err := p.net.Listen(addr)
	require.NoError(t, err)
	rec := &recordingPC{PacketConn: pc}
	cfg = cfg.Clone()
	cfg.ServerPublicKey = p.keys.Public
	c, err := NewClient(rec, p.srvPC.LocalAddr(), nil, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c, rec, c.Start(context.Background())
}
