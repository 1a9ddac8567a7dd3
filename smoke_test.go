package uxp

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type echoSrv struct{ NopServerHandler }
type echoConn struct{ NopHandler }

func (e *echoSrv) OnNewConnComing(c *Conn)            { c.SetHandler(echoConn{}) }
func (echoConn) OnNewDataComing(c *Conn, d []byte) { c.Write(d) }

type countCli struct {
	NopHandler
	n atomic.Int64
}

func (h *countCli) OnNewDataComing(c *Conn, d []byte) { h.n.Add(1) }

func TestSmoke(t *testing.T) {
	kp, err := GenerateKey()
	require.NoError(t, err)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	srv, err := NewServer(pc, &echoSrv{}, &Config{PrivateKey: kp.Private})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	h := &countCli{}
	cl, err := Dial(context.Background(), pc.LocalAddr().String(), h, &Config{ServerPublicKey: kp.Public})
	require.NoError(t, err)
	for i := 0; i < 100; i++ {
		_, err := cl.Conn().Write([]byte("hello"))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return h.n.Load() == 100 }, 5*time.Second, 10*time.Millisecond)
	t.Logf("client %+v", cl.Conn().Stats())
	require.NoError(t, cl.Close())
	require.NoError(t, srv.Close())
	t.Logf("server %+v", srv.Stats())
}
