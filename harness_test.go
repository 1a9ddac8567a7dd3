package uxp

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
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
