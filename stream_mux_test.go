package uxp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/stretchr/testify/require"
	"github.com/xtaci/smux"

	"github.com/uxp-go/uxp/internal/netsim"
)

// muxSession is what the conformance test needs from smux and yamux.
type muxSession interface {
	open() (io.ReadWriteCloser, error)
	accept() (io.ReadWriteCloser, error)
	Close() error
}

type smuxSession struct{ *smux.Session }

func (s smuxSession) open() (io.ReadWriteCloser, error)   { return s.OpenStream() }
func (s smuxSession) accept() (io.ReadWriteCloser, error) { return s.AcceptStream() }

type yamuxSession struct{ *yamux.Session }

func (s yamuxSession) open() (io.ReadWriteCloser, error)   { return s.Open() }
func (s yamuxSession) accept() (io.ReadWriteCloser, error) { return s.Accept() }

var muxKinds = []struct {
	name           string
	server, client func(net.Conn) (muxSession, error)
}{
	{
		name: "smux",
		server: func(c net.Conn) (muxSession, error) {
			s, err := smux.Server(c, nil)
			return smuxSession{s}, err
		},
		client: func(c net.Conn) (muxSession, error) {
			s, err := smux.Client(c, nil)
			return smuxSession{s}, err
		},
	},
	{
		name: "yamux",
		server: func(c net.Conn) (muxSession, error) {
			cfg := yamux.DefaultConfig()
			cfg.LogOutput = io.Discard
			s, err := yamux.Server(c, cfg)
			return yamuxSession{s}, err
		},
		client: func(c net.Conn) (muxSession, error) {
			cfg := yamux.DefaultConfig()
			cfg.LogOutput = io.Discard
			s, err := yamux.Client(c, cfg)
			return yamuxSession{s}, err
		},
	},
}

// muxLink is the impairment of both directions in the mux tests: 3%
// loss, 1% duplication, 2% reordering, 10 ms (+ up to 2 ms) one-way delay.
var muxLink = netsim.Impairment{Loss: 0.03, Duplicate: 0.01, Reorder: 0.02, Delay: 10 * time.Millisecond, Jitter: 2 * time.Millisecond}

// TestStreamMux runs smux and yamux over one uxp stream on real loopback
// sockets made lossy by netsim.Wrap: many concurrent streams each send
// their own pseudo-random data, the server echoes every stream, and each
// client stream checks it got its own bytes back exactly.
func TestStreamMux(t *testing.T) {
	for _, mk := range muxKinds {
		t.Run(mk.name, func(t *testing.T) {
			p := lossyLoopbackStreamPair(t, muxLink)
			runMux(t, mk.name, mk.server, mk.client, p.srv, p.cli)
		})
	}
}

// TestStreamMuxSynctest runs the smux case on the in-memory network under
// synctest (virtual time, deterministic). yamux cannot run in a bubble: it
// holds a sync.Mutex while waiting for a timer (Stream.sendWindowUpdate ->
// waitForSendErr), and a goroutine blocked on a mutex keeps synctest from
// advancing the clock, so the bubble hangs instead of progressing.
//
// smux keeps the result channels of its writes in a package-level
// sync.Pool, which crosses the bubble's edge both ways: a channel made
// outside (TestStreamMux) and taken in the bubble makes a blocked write
// non-durable, so the bubble's clock never advances and the test hangs;
// a channel made in the bubble and taken by the next smux user, outside
// or in another bubble, stops the runtime ("select on synctest channel
// from outside bubble"). Two collections empty every sync.Pool (its
// primary and victim caches): before the bubble and after it.
func TestStreamMuxSynctest(t *testing.T) {
	emptyPools := func() { runtime.GC(); runtime.GC() }
	emptyPools()
	t.Cleanup(emptyPools)
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 7, muxLink, nil, nil)
		mk := muxKinds[0]
		runMux(t, mk.name, mk.server, mk.client, p.srv, p.cli)
	})
}

func runMux(t *testing.T, name string, newServer, newClient func(net.Conn) (muxSession, error), srvConn, cliConn *StreamConn) {
	streams, size := 32, 96<<10
	if raceEnabled {
		streams, size = 16, 64<<10
	}
	srv, err := newServer(srvConn)
	require.NoError(t, err)
	cli, err := newClient(cliConn)
	require.NoError(t, err)

	var echoes sync.WaitGroup
	echoes.Add(1)
	go func() {
		defer echoes.Done()
		for {
			st, err := srv.accept()
			if err != nil {
				return
			}
			echoes.Add(1)
			go func() {
				defer echoes.Done()
				defer st.Close()
				io.Copy(st, st)
			}()
		}
	}()

	errs := make(chan error, streams)
	for i := range streams {
		go func() { errs <- echoStream(cli, testMessage(100+i, size)) }()
	}
	for range streams {
		require.NoError(t, <-errs)
	}
	require.NoError(t, cli.Close())
	require.NoError(t, srv.Close())
	echoes.Wait()
	st := cliConn.Session().Stats()
	require.Positive(t, st.Retransmissions, "the link should have lost packets")
	t.Logf("%s: %d streams x %d KiB echoed; client retransmissions %d", name, streams, size>>10, st.Retransmissions)
}

// lossyLoopbackStreamPair connects a Listener and DialConn-like client
// over 127.0.0.1 sockets whose outgoing packets go through netsim.Wrap.
func lossyLoopbackStreamPair(t testing.TB, imp netsim.Impairment) *streamPair {
	t.Helper()
	kp := testKeys(t)
	listen := func(seed uint64) *netsim.Conn {
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		_ = pc.SetReadBuffer(4 << 20)
		_ = pc.SetWriteBuffer(4 << 20)
		return netsim.Wrap(pc, imp, seed)
	}
	srvPC, cliPC := listen(1), listen(2)
	p := &streamPair{}
	var err error
	p.ln, err = Listen(srvPC, &Config{PrivateKey: kp.Private})
	require.NoError(t, err)
	t.Cleanup(func() { p.ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.cli, err = DialConnOver(ctx, cliPC, srvPC.LocalAddr(), &Config{ServerPublicKey: kp.Public})
	require.NoError(t, err)
	t.Cleanup(func() { p.cli.Close() })
	c, err := p.ln.Accept()
	require.NoError(t, err)
	p.srv = c.(*StreamConn)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// echoStream opens a stream, writes data while reading the echo, and
// checks the echo.
func echoStream(s muxSession, data []byte) error {
	st, err := s.open()
	if err != nil {
		return err
	}
	defer st.Close()
	werr := make(chan error, 1)
	go func() {
		for b := data; len(b) > 0; {
			n := min(len(b), 4096)
			if _, err := st.Write(b[:n]); err != nil {
				werr <- err
				return
			}
			b = b[n:]
		}
		werr <- nil
	}()
	got := make([]byte, len(data))
	if _, err := io.ReadFull(st, got); err != nil {
		return fmt.Errorf("reading echo: %w", err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("echo differs from what was sent")
	}
	return nil
}

// TestStreamHTTP serves net/http over a uxp Listener on loopback and
// fetches from it with an http.Client whose transport dials uxp: uploads
// and downloads of up to 256 KiB, checked, on concurrent
// requests that reuse the uxp connections (keep-alive).
func TestStreamHTTP(t *testing.T) {
	kp := testKeys(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	ln, err := Listen(pc, &Config{PrivateKey: kp.Private})
	require.NoError(t, err)

	mux := http.NewServeMux()
	mux.HandleFunc("/sum", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
	})
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(testMessage(n, n))
	})
	hs := &http.Server{Handler: mux}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	var dials sync.WaitGroup
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			dials.Add(1)
			defer dials.Done()
			return DialConn(ctx, ln.Addr().String(), &Config{ServerPublicKey: kp.Public})
		},
		MaxIdleConnsPerHost: 4,
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	const requests = 24
	errs := make(chan error, requests)
	for i := range requests {
		go func() { errs <- httpRoundTrip(client, i) }()
	}
	for range requests {
		require.NoError(t, <-errs)
	}
	dials.Wait()
	tr.CloseIdleConnections()
	require.NoError(t, hs.Close())
	require.ErrorIs(t, <-served, http.ErrServerClosed)
	require.NoError(t, ln.Close())
	require.Positive(t, ln.Server().Stats().SessionsAccepted)
}

func httpRoundTrip(client *http.Client, i int) error {
	size := 1 + (i*37_001)%(256<<10)
	body := testMessage(i, size)
	resp, err := client.Post("http://uxp/sum", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		return err
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	want := sha256.Sum256(body)
	if string(got) != hex.EncodeToString(want[:]) {
		return fmt.Errorf("request %d: upload checksum %q, want %x", i, got, want)
	}
	resp, err = client.Get("http://uxp/bytes?n=" + strconv.Itoa(size))
	if err != nil {
		return err
	}
	got, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if !bytes.Equal(got, testMessage(size, size)) {
		return fmt.Errorf("request %d: download of %d bytes differs (got %d)", i, size, len(got))
	}
	return nil
}
