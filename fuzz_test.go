package uxp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/uxp-go/uxp/internal/arq"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/netsim"
)

// FuzzFrame seals an arbitrary frame (any type, any body) with a session's
// real key and feeds it to the peer: garbage that authenticates, as a
// hostile but authenticated peer would send. It covers every frame body
// decoder behind Conn.receive (KCP, ping, pong, close, FEC wrapper, loss,
// rekey, path challenge and response). Nothing may panic; the session's
// state stays within its bounds; and unless the frame was one that may
// legitimately end or alter the stream (close, KCP, FEC), the session still
// delivers a real message afterwards.
func FuzzFrame(f *testing.F) {
	var rk [rekeyBodySize]byte
	putRekeyFrame(rk[:], rekeyFrame{kind: rekeyInit, epoch: 1, pub: [32]byte{9, 8, 7}})
	seeds := []struct {
		kind byte
		body []byte
	}{
		{framePing, make([]byte, pingSize)},
		{framePong, make([]byte, pongSize)},
		{frameClose, []byte{byte(CloseNormal)}},
		{frameClose, []byte{4, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 'b', 'y', 'e'}},
		{frameLoss, make([]byte, lossBodySize)},
		{frameRekey, rk[:]},
		{framePathChallenge, make([]byte, pathTokenSize)},
		{framePathResponse, make([]byte, pathTokenSize)},
		{frameKCP, make([]byte, kcpOverhead)},
		{frameKCP, records(f, append(kcpSeg(nil, 0, kcp.IKCP_CMD_ACK, 0, 256, 5, 0, 0, 0), kcpSeg(nil, 0, kcp.IKCP_CMD_PUSH, 0, 256, 5, 0, 0, 4)...))},
		{frameLane, make([]byte, 1+kcpOverhead)},
		{frameLane, append([]byte{1}, records(f, kcpSeg(nil, 0, kcp.IKCP_CMD_PUSH, 1, 256, 5, 0, 0, 9))...)},
		{frameDatagram, []byte("dgram")},
		{frameLatest, []byte{1, 2, 0, 0, 0, 'x'}},
		{frameFEC, make([]byte, 12)},
		{frameMTUProbe, make([]byte, 1200-transportOverhead)},
		{frameMTUAck, []byte{1, 0, 0, 0, 0xb0, 0x04}},
		// A fragment whose inner frame is a KCP frame with a malformed
		// record (a reserved bit set: a well-formed one would take sn 0
		// from under the sender's real message).
		{frameFragment, append([]byte{1, 0, 0, 0, 30, 0, frameKCP, 0x20}, make([]byte, 28)...)},
		{frameFragment, []byte{2, 0, 10, 0, 12, 0, 1, 2}},
		{42, nil},
	}
	for _, s := range seeds {
		for _, toClient := range []bool{false, true} {
			f.Add(s.kind, s.body, toClient, false, false)
		}
		f.Add(s.kind, s.body, false, true, true)
	}
	f.Fuzz(func(t *testing.T, kind byte, body []byte, toClient, fromElsewhere, fecOn bool) {
		if len(body) > defaultMTUIPv4-transportOverhead {
			body = body[:defaultMTUIPv4-transportOverhead]
		}
		p := newFramePair(t, fecOn)
		now := time.Now()
		sender, receiver, out, h := p.cli, p.srv, p.cliOut, p.srvH
		from := p.cliAP
		if toClient {
			sender, receiver, out, h = p.srv, p.cli, p.srvOut, p.cliH
			from = p.srvAP
		}
		if fromElsewhere {
			from = netip.MustParseAddrPort("10.9.9.9:999")
		}
		sender.sendFrame(kind, body)
		sender.shard.flushSends() // as the shard does when its event ends
		feed(receiver, out.take(), from, now)

		// Bounds on what the peer may make the session hold.
		require.LessOrEqual(t, receiver.path.bytesOut, pathAmplification*receiver.path.bytesIn)
		if d := receiver.fec.dec; d != nil {
			require.LessOrEqual(t, d.Groups(), fecMaxGroups)
			require.LessOrEqual(t, d.Held(), fecLimits(receiver.fec.params, receiver.ep.set.fecMaxPacket()).MaxBytes)
		}
		if receiver.state != stateClosed {
			require.LessOrEqual(t, receiver.recvHeldSegs(), receiver.ep.set.recvBudgetSegs())
		}
		if receiver.state == stateClosed {
			require.True(t, errors.Is(receiver.Err(), net.ErrClosed), "ended with %v", receiver.Err())
			return
		}
		switch kind {
		case frameClose, frameKCP, frameFEC:
			return
		}
		// Still healthy: a real message goes through.
		msg := []byte("after the garbage")
		sendLaneNow(sender, msg)
		if sender.fec.enc != nil {
			sender.fec.enc.Flush(now, sender.emitShard)
		}
		sender.shard.flushSends()
		feed(receiver, out.take(), from, now)
		_, msgs, _ := h.snapshot()
		require.NotEmpty(t, msgs, "session stopped delivering")
		require.True(t, bytes.Equal(msg, msgs[len(msgs)-1]))
	})
}

// sendLaneNow puts msg on lane 0 and flushes it, as pump would.
func sendLaneNow(c *Conn, msg []byte) {
	now := time.Now()
	c.arq.Enqueue(now, 0, msg, time.Time{}, arq.NoLimit)
	c.arq.Admit(now, arq.NoLimit)
	c.arq.Flush(now)
	c.shard.flushSends() // as the shard does when its event ends
}

// TestFramePairDelivers guards the FuzzFrame harness itself.
func TestFramePairDelivers(t *testing.T) {
	p := newFramePair(t, false)
	now := time.Now()
	sendLaneNow(p.cli, []byte("hi"))
	feed(p.srv, p.cliOut.take(), p.cliAP, now)
	_, msgs, _ := p.srvH.snapshot()
	require.Equal(t, [][]byte{[]byte("hi")}, msgs)
	require.Equal(t, stateEstablished, p.srv.state)
	_ = binary.LittleEndian
}

// FuzzServerDatagrams feeds arbitrary datagrams to a live server on an
// in-memory network, next to an established session: from a stranger's
// address, spoofed from the client's address, and as mutations of the
// client's real packets (so they reach the session's AEAD and frame code).
// After each input the server must still have exactly its one session,
// that session must still echo a message, and the goroutine count must not
// grow.
//
// Input: records of [op, len, bytes...]. op%3 == 0 sends bytes from a
// stranger, 1 spoofs them from the client, 2 takes the client's
// (op/3)-th most recent packet and XORs bytes into it.
func FuzzServerDatagrams(f *testing.F) {
	kp := testKeys(f)
	hs, err := newClientHandshake(kp.Public, ChaCha20Poly1305, fecParams{}, 1, time.Now(), rand.Reader, clientIdentity{}, helloParams{})
	require.NoError(f, err)
	var hdr [minTransportSize]byte
	putTransportHeader(hdr[:], 7, 1, 1)
	rec := func(op byte, b []byte) []byte { return append([]byte{op, byte(len(b))}, b...) }
	f.Add(rec(0, hs.packet[:min(len(hs.packet), 255)]))
	f.Add(rec(1, hdr[:]))
	f.Add(rec(2, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}))
	f.Add(rec(5, []byte{0, 0, 0, 0, 0, 0, 0, 0, 1}))
	f.Add(append(rec(3, []byte{msgResponse}), rec(4, []byte{msgTransport, 0, 0, 0})...))
	f.Add([]byte{})

	n := netsim.NewNetwork(1)
	f.Cleanup(func() { n.Close() })
	srvPC, err := n.Listen("10.0.0.1:4000")
	require.NoError(f, err)
	cliPC, err := n.Listen("10.0.0.2:5000")
	require.NoError(f, err)
	stranger, err := n.Listen("10.0.0.66:7000")
	require.NoError(f, err)
	f.Cleanup(func() { stranger.Close() })
	var (
		capMu  sync.Mutex
		recent [][]byte
	)
	n.SetLink(cliPC.LocalAddr(), srvPC.LocalAddr(), netsim.Impairment{Drop: func(p []byte) bool {
		capMu.Lock()
		if len(recent) == 8 {
			recent = recent[1:]
		}
		recent = append(recent, append([]byte(nil), p...))
		capMu.Unlock()
		return false
	}})
	srvH := &recordServer{newConn: func() *recordConn { r := newRecordConn(); r.echo = true; return r }}
	srv, err := NewServer(srvPC, srvH, &Config{PrivateKey: kp.Private, Workers: 2})
	require.NoError(f, err)
	require.NoError(f, srv.Start())
	f.Cleanup(func() { srv.Close() })
	cliH := newRecordConn()
	cli, err := NewClient(cliPC, srvPC.LocalAddr(), cliH, &Config{ServerPublicKey: kp.Public})
	require.NoError(f, err)
	require.NoError(f, cli.Start(context.Background()))
	f.Cleanup(func() { cli.Close() })
	goroutines := runtime.NumGoroutine()
	seq := 0

	f.Fuzz(func(t *testing.T, in []byte) {
		for len(in) >= 2 {
			op, size := in[0], int(in[1])
			in = in[2:]
			size = min(size, len(in))
			b := in[:size]
			in = in[size:]
			switch op % 3 {
			case 0:
				_, _ = stranger.WriteTo(b, srvPC.LocalAddr())
			case 1:
				n.Inject(cliPC.LocalAddr(), srvPC.LocalAddr(), b)
			case 2:
				capMu.Lock()
				var pkt []byte
				if k := int(op / 3); k < len(recent) {
					pkt = append([]byte(nil), recent[len(recent)-1-k]...)
				}
				capMu.Unlock()
				for i := range min(len(b), len(pkt)) {
					pkt[i] ^= b[i]
				}
				n.Inject(cliPC.LocalAddr(), srvPC.LocalAddr(), pkt)
			}
		}
		// The session still works both ways.
		seq++
		msg := fmt.Appendf(nil, "probe %d", seq)
		_, err := cli.Conn().Write(msg)
		require.NoError(t, err)
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, msgs, _ := cliH.snapshot()
			if len(msgs) > 0 && bytes.Equal(msgs[len(msgs)-1], msg) {
				break
			}
			require.True(t, time.Now().Before(deadline), "session stopped echoing")
			time.Sleep(time.Millisecond)
		}
		require.Equal(t, 1, srv.Stats().Sessions)
		// Slack for the testing package's own per-input goroutines (tRunner,
		// the fuzz worker's); a per-datagram leak grows past it at once.
		require.LessOrEqual(t, runtime.NumGoroutine(), goroutines+4, "goroutines leak")
	})
}
