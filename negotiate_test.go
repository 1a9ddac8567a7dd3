package uxp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// TestNegotiation: each side's packet size and lane count travel in the
// handshake. A difference that cannot work fails Start with an
// *IncompatibleError at the first response (well within the handshake
// timeout) and reaches the server's stats and trace; a smaller packet size
// on either side is reconciled; an older client that announces nothing
// still connects.
func TestNegotiation(t *testing.T) {
	tests := []struct {
		name     string
		srv, cli Config
		wantErr  *IncompatibleError // nil: connects
		wantMTU  int
	}{
		{name: "lanes differ", srv: Config{Lanes: make([]LaneConfig, 2)}, cli: Config{},
			wantErr: &IncompatibleError{Field: "Lanes", Local: 1, Remote: 2}},
		{name: "lanes differ, client has more", srv: Config{}, cli: Config{Lanes: make([]LaneConfig, 3)},
			wantErr: &IncompatibleError{Field: "Lanes", Local: 3, Remote: 1}},
		{name: "client MTU larger", srv: Config{KCP: KCPConfig{MTU: 1400}}, cli: Config{KCP: KCPConfig{MTU: 1500}}, wantMTU: 1400},
		{name: "server MTU larger", srv: Config{KCP: KCPConfig{MTU: 1500}}, cli: Config{KCP: KCPConfig{MTU: 1280}}, wantMTU: 1280},
		{name: "message size does not fit the smaller MTU",
			srv: Config{KCP: KCPConfig{MTU: 600}},
			cli: Config{KCP: KCPConfig{MTU: 1500}, MaxMessageSize: 200 * 1000},
			// The server's own MaxMessageSize fits its MTU; the client's
			// does not fit the server's.
			wantErr: &IncompatibleError{Field: "MTU", Local: 1500, Remote: 600}},
		{name: "server's message size does not fit the smaller MTU",
			srv:     Config{KCP: KCPConfig{MTU: 1500, RecvWindow: 1024}, MaxMessageSize: 200 * 1000, SendQueueBytes: 4 << 20},
			cli:     Config{KCP: KCPConfig{MTU: 600}},
			wantErr: &IncompatibleError{Field: "MTU", Local: 600, Remote: 1500}},
		{name: "older server announces nothing", srv: Config{Lanes: make([]LaneConfig, 2), hooks: &testHooks{oldHello: true}},
			cli: Config{Lanes: make([]LaneConfig, 2), KCP: KCPConfig{MTU: 1300}}, wantMTU: 1300},
		{name: "older client announces nothing", srv: Config{Lanes: make([]LaneConfig, 2)},
			cli: Config{Lanes: make([]LaneConfig, 2), hooks: &testHooks{oldHello: true}}, wantMTU: defaultMTUIPv4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &traceRecorder{}
				srv, cli := tt.srv, tt.cli
				srv.Tracer = slog.New(rec)
				if cli.KCP.RecvWindow == 0 && cli.MaxMessageSize > defaultMaxMessageSize {
					cli.KCP.RecvWindow = 1024
					cli.SendQueueBytes = 4 << 20
				}
				p := newSimPair(t, 20, &srv, &cli, false)
				start := time.Now()
				err := p.cli.Start(context.Background())
				if tt.wantErr != nil {
					var ie *IncompatibleError
					require.ErrorAs(t, err, &ie)
					require.Equal(t, tt.wantErr, ie)
					require.Less(t, time.Since(start), defaultHandshakeTimeout, "fails at the first response")
					st := p.srv.Stats()
					require.Equal(t, uint64(1), st.Handshake.RefusedIncompatible)
					require.Zero(t, st.Sessions+st.HalfOpen, "no session state")
					require.Len(t, rec.find(TraceHandshakeRefused, "server"), 1)
					return
				}
				require.NoError(t, err)
				time.Sleep(50 * time.Millisecond)
				c := p.cli.Conn()
				require.Equal(t, tt.wantMTU, c.MTU())
				require.Equal(t, tt.wantMTU-datagramOverhead, c.MaxDatagramSize())
				conns, _, _ := p.srvH.counts()
				require.Equal(t, 1, conns)
				sc := p.srvH.conns[0]
				require.Equal(t, tt.wantMTU, sc.MTU())
				require.Equal(t, c.MaxDatagramSize(), sc.MaxDatagramSize())

				// A message of several segments and a datagram of the
				// largest size arrive; one byte more is refused locally.
				big := bytes.Repeat([]byte{7}, 5000)
				_, err = c.Write(big)
				require.NoError(t, err)
				require.ErrorIs(t, c.WriteDatagram(make([]byte, c.MaxDatagramSize()+1)), ErrMessageTooLarge)
				require.NoError(t, c.WriteDatagram(make([]byte, c.MaxDatagramSize())))
				time.Sleep(time.Second)
				h := p.srvH.handler(0)
				_, msgs, _ := h.snapshot()
				require.Len(t, msgs, 1)
				require.Equal(t, big, msgs[0])
				require.Zero(t, p.srv.Stats().Drops.Total(), "nothing was dropped as too long")
			})
		})
	}
}

// decidingServer is a recordServer with a ConnectHandler.
type decidingServer struct {
	recordServer
	decide func(req *ConnectRequest) ConnectDecision
}

func (s *decidingServer) OnConnectRequest(req *ConnectRequest) ConnectDecision { return s.decide(req) }

var _ ConnectHandler = (*decidingServer)(nil)

// decidingPair is a server with a ConnectHandler on a netsim network.
type decidingPair struct {
	net  *netsim.Network
	srv  *Server
	srvH *decidingServer
	keys KeyPair
	next int
}

func newDecidingPair(t testing.TB, srvCfg *Config, decide func(*ConnectRequest) ConnectDecision) *decidingPair {
	t.Helper()
	p := &decidingPair{net: netsim.NewNetwork(30), keys: testKeys(t), srvH: &decidingServer{decide: decide}}
	t.Cleanup(func() { p.net.Close() })
	cfg := srvCfg.Clone()
	cfg.PrivateKey = p.keys.Private
	pc, err := p.net.Listen("10.0.0.1:4000")
	require.NoError(t, err)
	p.srv, err = NewServer(pc, p.srvH, cfg)
	require.NoError(t, err)
	require.NoError(t, p.srv.Start())
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// client makes a client with connect data (nil: none); start it with
// Start.
func (p *decidingPair) client(t testing.TB, data []byte) *Client {
	t.Helper()
	p.next++
	pc, err := p.net.Listen(netsimAddr(p.next))
	require.NoError(t, err)
	c, err := NewClient(pc, p.srv.Addr(), nil, &Config{ServerPublicKey: p.keys.Public, ConnectData: data})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func netsimAddr(i int) string {
	return fmt.Sprintf("10.1.%d.%d:5000", i/250, i%250+1)
}

// TestConnectData: the client's connect data reaches the server's
// decision and Conn intact, the server's accept data reaches the client,
// and a rejection's code and reason reach the client as a *RejectError.
func TestConnectData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		long := bytes.Repeat([]byte("r"), 300)
		var seen [][]byte
		p := newDecidingPair(t, nil, func(req *ConnectRequest) ConnectDecision {
			seen = append(seen, append([]byte(nil), req.ConnectData()...))
			_, hasKey := req.PeerKey()
			require.False(t, hasKey)
			require.NotNil(t, req.RemoteAddr())
			switch name := string(req.ConnectData()); {
			case name == "":
				return RejectConnect(9, "a player name is required to join this server")
			case name == "mallory":
				return RejectConnect(403, "banned: "+string(long))
			case name == "panic":
				panic("decision failed")
			}
			return AcceptConnect(roomFor(req.ConnectData()))
		})

		// Intact, both ways, at the maximum size too.
		maxData := bytes.Repeat([]byte{0xa5}, MaxConnectDataSize)
		for _, data := range [][]byte{[]byte("alice"), maxData} {
			c := p.client(t, data)
			require.NoError(t, c.Start(context.Background()))
			require.Equal(t, data, c.Conn().ConnectData())
			require.Equal(t, roomFor(data), c.Conn().AcceptData())
		}
		time.Sleep(50 * time.Millisecond)
		p.srvH.mu.Lock()
		conns := append([]*Conn(nil), p.srvH.conns...)
		p.srvH.mu.Unlock()
		// The two sessions may be announced in either order: they live on
		// different shards.
		var got [][]byte
		for _, c := range conns {
			got = append(got, c.ConnectData())
		}
		require.ElementsMatch(t, [][]byte{[]byte("alice"), maxData}, got)

		// Rejections, authenticated, with their code and reason.
		var re *RejectError
		err := p.client(t, []byte("mallory")).Start(context.Background())
		require.ErrorAs(t, err, &re)
		require.Equal(t, uint16(403), re.Code)
		require.Equal(t, ("banned: " + string(long))[:MaxRejectReasonSize], re.Reason, "cut to MaxRejectReasonSize")

		// A client without connect data gets the code and the reason's
		// first 25 bytes (its initiation leaves no room for more).
		err = p.client(t, nil).Start(context.Background())
		require.ErrorAs(t, err, &re)
		require.Equal(t, &RejectError{Code: 9, Reason: "a player name is required"}, re)

		// A panic in the decision is a rejection.
		err = p.client(t, []byte("panic")).Start(context.Background())
		require.ErrorAs(t, err, &re)
		require.Equal(t, uint16(0), re.Code)
		st := p.srv.Stats()
		require.Equal(t, uint64(1), st.CallbackPanics)
		require.Equal(t, uint64(3), st.Handshake.RefusedByApp)
		require.Equal(t, 2, st.Sessions)
		require.Len(t, seen, 5)
	})
}

func roomFor(name []byte) []byte {
	return fmt.Appendf(nil, "room 7 for %x", name[:min(len(name), 100)])
}

// TestConnectDataTooLong: connect data over MaxConnectDataSize fails
// NewClient, Dial and NewDialer with an error naming the field.
func TestConnectDataTooLong(t *testing.T) {
	kp := testKeys(t)
	cfg := &Config{ServerPublicKey: kp.Public, ConnectData: make([]byte, MaxConnectDataSize+1)}
	var ce *ConfigError
	_, err := Dial(context.Background(), "127.0.0.1:1", nil, cfg)
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "ConnectData", ce.Field)
	require.ErrorAs(t, cfg.Validate(), &ce)
	require.Equal(t, "ConnectData", ce.Field)
	cfg.ConnectData = cfg.ConnectData[:MaxConnectDataSize]
	require.NoError(t, cfg.Validate())
}

// TestDeferredDecision: the application answers from another goroutine,
// accept or reject; an unanswered request expires with the handshake
// timeout; and 100 requests waiting at once do not delay an unrelated
// handshake.
func TestDeferredDecision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		waiting := make(chan *ConnectRequest, 200)
		p := newDecidingPair(t, nil, func(req *ConnectRequest) ConnectDecision {
			switch string(req.ConnectData()) {
			case "later-yes":
				go func() {
					time.Sleep(300 * time.Millisecond) // an auth backend
					require.NoError(t, req.Accept([]byte("ticket")))
					require.ErrorIs(t, req.Accept(nil), ErrRequestDone, "answered once")
				}()
				return DeferConnect()
			case "later-no":
				go func() {
					time.Sleep(300 * time.Millisecond)
					require.NoError(t, req.Reject(401, "bad token"))
				}()
				return DeferConnect()
			case "wait":
				waiting <- req
				return DeferConnect()
			}
			return AcceptConnect(nil)
		})

		start := time.Now()
		c := p.client(t, []byte("later-yes"))
		require.NoError(t, c.Start(context.Background()))
		require.Equal(t, []byte("ticket"), c.Conn().AcceptData())
		require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)

		var re *RejectError
		err := p.client(t, []byte("later-no")).Start(context.Background())
		require.ErrorAs(t, err, &re)
		require.Equal(t, &RejectError{Code: 401, Reason: "bad token"}, re)

		// 100 requests wait for an answer at once.
		errs := make(chan error, 100)
		for range 100 {
			c := p.client(t, []byte("wait"))
			go func() { errs <- c.Start(context.Background()) }()
		}
		time.Sleep(100 * time.Millisecond)
		require.Len(t, waiting, 100)
		// An unrelated handshake is answered at once (the netsim links
		// have no delay, so it takes no virtual time at all).
		start = time.Now()
		require.NoError(t, p.client(t, []byte("bob")).Start(context.Background()))
		require.Less(t, time.Since(start), 10*time.Millisecond)

		// Half are accepted, half left to expire.
		var late *ConnectRequest
		for i := range 100 {
			req := <-waiting
			if i%2 == 0 {
				require.NoError(t, req.Accept(nil))
			} else {
				late = req
			}
		}
		var ok, timedOut int
		for range 100 {
			err := <-errs
			var te *HandshakeTimeoutError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &te):
				timedOut++
			default:
				t.Fatalf("unexpected error %v", err)
			}
		}
		require.Equal(t, 50, ok)
		require.Equal(t, 50, timedOut)
		require.ErrorIs(t, late.Accept(nil), ErrRequestDone, "expired")
		st := p.srv.Stats()
		require.Equal(t, uint64(102), st.Handshake.Deferred)
		require.Equal(t, 52, st.Sessions)
	})
}

// TestDeferredAcceptWhenFull: a deferred acceptance that comes after the
// server filled MaxSessions is refused with ErrServerFull, as a prompt one
// would be.
func TestDeferredAcceptWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		waiting := make(chan *ConnectRequest, 1)
		p := newDecidingPair(t, &Config{MaxSessions: 1}, func(req *ConnectRequest) ConnectDecision {
			if string(req.ConnectData()) == "slow" {
				waiting <- req
				return DeferConnect()
			}
			return AcceptConnect(nil)
		})
		errc := make(chan error, 1)
		slow := p.client(t, []byte("slow"))
		go func() { errc <- slow.Start(context.Background()) }()
		req := <-waiting
		require.NoError(t, p.client(t, []byte("fast")).Start(context.Background()))
		time.Sleep(50 * time.Millisecond)
		require.NoError(t, req.Accept(nil))
		require.ErrorIs(t, <-errc, ErrServerFull)
		require.Equal(t, 1, p.srv.Stats().Sessions)
	})
}

// TestConnectDataLoopback: connect data, accept data and a rejection over
// real UDP on 127.0.0.1, through Dial and a Dialer; path MTU discovery
// confirms the full packet size there.
func TestConnectDataLoopback(t *testing.T) {
	kp := testKeys(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	h := &decidingServer{decide: func(req *ConnectRequest) ConnectDecision {
		if len(req.ConnectData()) == 0 {
			return RejectConnect(7, "who are you?")
		}
		return AcceptConnect(append([]byte("hi "), req.ConnectData()...))
	}}
	srv, err := NewServer(pc, h, &Config{PrivateKey: kp.Private})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cl, err := Dial(ctx, srv.Addr().String(), nil, &Config{ServerPublicKey: kp.Public, ConnectData: []byte("ann")})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	require.Equal(t, []byte("hi ann"), cl.Conn().AcceptData())
	// Loopback carries any size: path MTU discovery reaches the maximum.
	require.Eventually(t, func() bool { return cl.Conn().PathMTU() == defaultMTUIPv4 }, 5*time.Second, 10*time.Millisecond)

	var re *RejectError
	_, err = Dial(ctx, srv.Addr().String(), nil, &Config{ServerPublicKey: kp.Public})
	require.ErrorAs(t, err, &re)
	require.Equal(t, &RejectError{Code: 7, Reason: "who are you?"}, re)

	dpc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	d, err := NewDialer(dpc, &Config{ServerPublicKey: kp.Public, ConnectData: []byte("bot")})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	c, err := d.Dial(ctx, srv.Addr(), nil)
	require.NoError(t, err)
	require.Equal(t, []byte("hi bot"), c.AcceptData())
	require.Equal(t, []byte("bot"), c.ConnectData())
}
