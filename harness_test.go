package uxp

// The root's one test harness, shared by its integration, lifecycle and
// end-to-end tests: the handlers that record what a session sees
// (recordConn, recordServer, laneRecorder, connCollector, echoServer), the
// simulated networks (simPair, simServer, dialerNet on internal/netsim),
// sockets that record or discard (recordingPC, sinkPC, nullPacketConn,
// loopback), sessions driven by hand (framePair, newStagingEndpoint),
// handshake helpers for pure-code tests, and the hand-built endpoint's
// owner (nopOwner) and test hooks (hooksOf, withRand). The tests' names for
// internal/wire and internal/handshake live in names_test.go.

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
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

// sinkPC is a PacketConn that records what is written to it and never
// delivers anything: enough for a Conn driven by hand on the test goroutine.
type sinkPC struct {
	mu   sync.Mutex
	pkts [][]byte
	addr net.Addr
}

func (s *sinkPC) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, net.ErrClosed }

func (s *sinkPC) WriteTo(p []byte, _ net.Addr) (int, error) {
	s.mu.Lock()
	s.pkts = append(s.pkts, append([]byte(nil), p...))
	s.mu.Unlock()
	return len(p), nil
}

func (s *sinkPC) take() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pkts
	s.pkts = nil
	return p
}

func (s *sinkPC) Close() error                     { return nil }
func (s *sinkPC) LocalAddr() net.Addr              { return s.addr }
func (s *sinkPC) SetDeadline(time.Time) error      { return nil }
func (s *sinkPC) SetReadDeadline(time.Time) error  { return nil }
func (s *sinkPC) SetWriteDeadline(time.Time) error { return nil }

// framePair is a client and a server Conn sharing keys, driven by hand on
// the calling goroutine (which plays both shards): whatever one seals lands
// in its sink, and the test feeds it to the other's receive.
type framePair struct {
	cli, srv       *Conn
	cliOut, srvOut *sinkPC
	cliH, srvH     *recordConn
	cliAP, srvAP   netip.AddrPort
}

func newFramePair(tb testing.TB, fecOn bool) *framePair {
	tb.Helper()
	cfg := &Config{}
	if fecOn {
		cfg.FEC = FECConfig{DataShards: 4, ParityShards: 2, Adaptive: true}
	}
	return newFramePairConfig(tb, cfg)
}

// newFramePairConfig is newFramePair with both sides on cfg.
func newFramePairConfig(tb testing.TB, cfg *Config) *framePair {
	tb.Helper()
	fecOn := cfg.FEC.DataShards > 0
	set, err := cfg.resolve()
	require.NoError(tb, err)
	p := &framePair{
		cliAP: netip.MustParseAddrPort("10.0.0.2:5000"),
		srvAP: netip.MustParseAddrPort("10.0.0.1:4000"),
		cliH:  newRecordConn(),
		srvH:  newRecordConn(),
	}
	p.cliOut = &sinkPC{addr: net.UDPAddrFromAddrPort(p.cliAP)}
	p.srvOut = &sinkPC{addr: net.UDPAddrFromAddrPort(p.srvAP)}
	var k1, k2 [32]byte
	k1[0], k2[0] = 1, 2
	ck := sessionKeys{send: k1, recv: k2}
	sk := sessionKeys{send: k2, recv: k1}
	now := time.Now()
	var fp fecParams
	if fecOn {
		fp = set.fec
	}
	p.cli, err = newConn(newEndpoint(p.cliOut, set, 1, nopOwner{}), 7, &ck, ChaCha20Poly1305, fp, p.srvAP, true, now)
	require.NoError(tb, err)
	p.srv, err = newConn(newEndpoint(p.srvOut, set, 1, nopOwner{}), 7, &sk, ChaCha20Poly1305, fp, p.cliAP, false, now)
	require.NoError(tb, err)
	p.cli.SetHandler(p.cliH)
	p.srv.SetHandler(p.srvH)
	return p
}

// feed hands sealed datagrams to c as the endpoint's dispatch would.
func feed(c *Conn, pkts [][]byte, from netip.AddrPort, now time.Time) {
	for _, pkt := range pkts {
		if len(pkt) > c.ep.set.mtu {
			continue
		}
		if _, ok := parseTransportHeader(pkt); ok {
			c.receive(pkt, 0, from, now)
		}
	}
	c.shard.flushSends() // replies leave when the shard's event ends
}

// nullPacketConn is a PacketConn that accepts and discards writes; reads
// fail. It lets an endpoint exist without a socket.
type nullPacketConn struct{}

func (nullPacketConn) ReadFrom([]byte) (int, net.Addr, error)    { return 0, nil, net.ErrClosed }
func (nullPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }
func (nullPacketConn) Close() error                              { return nil }
func (nullPacketConn) LocalAddr() net.Addr                       { return &net.UDPAddr{} }
func (nullPacketConn) SetDeadline(time.Time) error               { return nil }
func (nullPacketConn) SetReadDeadline(time.Time) error           { return nil }
func (nullPacketConn) SetWriteDeadline(time.Time) error          { return nil }

type echoServer struct{ NopServerHandler }

func (echoServer) OnNewConnComing(c *Conn) { c.SetHandler(echoConn{}) }

type echoConn struct{ NopHandler }

// OnNewDataComing writes from inside the callback: this must not deadlock.
func (echoConn) OnNewDataComing(c *Conn, data []byte) {
	if _, err := c.Write(data); err != nil {
		c.Close()
	}
}

// byteCounter records what one netsim endpoint receives.
func drainBytes(t testing.TB, pc net.PacketConn) (n, packets int) {
	t.Helper()
	buf := make([]byte, maxDatagram)
	for {
		require.NoError(t, pc.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
		k, _, err := pc.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			require.True(t, errors.As(err, &ne) && ne.Timeout(), "read: %v", err)
			return n, packets
		}
		n += k
		packets++
	}
}

// restartServer simulates a crash: the server's packets stop reaching the
// client, the server goes away without telling anyone, and a new one
// starts on the same address with the same key.
func (p *simPair) restartServer(t testing.TB, link netsim.Impairment) {
	t.Helper()
	addr := p.srvPC.LocalAddr()
	p.net.SetLink(addr, p.cliPC.LocalAddr(), netsim.Impairment{Loss: 1})
	require.NoError(t, p.srv.Close())
	p.net.SetLink(addr, p.cliPC.LocalAddr(), link)
	var err error
	p.srvPC, err = p.net.Listen(addr.String())
	require.NoError(t, err)
	p.srvH = &recordServer{}
	p.srv, err = NewServer(p.srvPC, p.srvH, p.srvCfg)
	require.NoError(t, err)
	require.NoError(t, p.srv.Start())
	t.Cleanup(func() { p.srv.Close() })
}

// settledMemory returns the live heap and goroutine count once garbage and
// pooled buffers are gone: two GCs empty a sync.Pool.
func settledMemory() (heap uint64, goroutines int) {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond) // let exiting goroutines finish
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, runtime.NumGoroutine()
}

// waitEcho waits until h has received n messages.
func waitEcho(t *testing.T, h *recordConn, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, msgs, _ := h.snapshot(); len(msgs) >= n {
			return
		}
		if time.Now().After(deadline) {
			_, msgs, _ := h.snapshot()
			t.Fatalf("got %d of %d messages", len(msgs), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// newStagingEndpoint is an endpoint with shards that do not run, and n
// sessions spread over them, for driving the read loop's hand-off by hand.
func newStagingEndpoint(t testing.TB, workers, n int) (*endpoint, []*Conn) {
	t.Helper()
	set, err := (&Config{}).resolve()
	if err != nil {
		t.Fatal(err)
	}
	ep := newEndpoint(nullPacketConn{}, set, workers, nopOwner{})
	conns := make([]*Conn, n)
	for i := range conns {
		c := &Conn{connFixed: connFixed{id: uint32(i + 1), ep: ep}, connShard: connShard{heapIndex: -1}}
		c.shard = ep.shardFor(c.id)
		ep.table.set(c.id, c)
		conns[i] = c
	}
	return ep, conns
}

// drainShard takes every queued batch off s, returning the counters of
// the datagrams per session in the order the shard would see them, and
// frees them.
func drainShard(s *shard) map[uint32][]uint64 {
	got := map[uint32][]uint64{}
	for len(s.in) > 0 {
		b := <-s.in
		for _, p := range b.pkts[:b.n] {
			h, _ := parseTransportHeader(p.buf.dgram()[:p.n])
			got[p.conn.id] = append(got[p.conn.id], h.counter())
		}
		s.discardBatch(b)
	}
	return got
}

// requireConfigField checks a Validate result: no error when field is
// empty, else a *ConfigError naming field.
func requireConfigField(t testing.TB, err error, field string) {
	t.Helper()
	if field == "" {
		require.NoError(t, err)
		return
	}
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, field, ce.Field)
}
