package uxp

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

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
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	d, err := NewDialer(pc, &Config{ServerPublicKey: pub})
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
