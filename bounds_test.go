package uxp

import (
	"bytes"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/fec"
	"github.com/uxp-go/uxp/internal/kcpx"
	"github.com/uxp-go/uxp/internal/wire"
)

// Regression tests for the bounds on what a hostile but authenticated peer
// can make a session spend (docs/security.md, "Reliability-layer and FEC
// bounds"). Each drives a real session pair by hand (sessionPairs) and
// injects crafted frames sealed with the peer's real keys.

// TestFECShardBounds (issue 13, section 2 item 2): after negotiating
// RS(10,3), a peer claims other shard counts (up to 64 data / 32 parity)
// and cycles through (data, parity) pairs so that every recovery needs a
// new Reed-Solomon codec; and it sends 11-byte shards that each pinned a
// full-MTU buffer. Now shards beyond the negotiated counts are dropped and
// counted as malformed, the codecs built stay within the 10×3 negotiated
// pairs, and the decoder's memory (its own accounting) stays within the
// session's budget and close to what was sent.
func TestFECShardBounds(t *testing.T) {
	cfg := &Config{FEC: FECConfig{DataShards: 10, ParityShards: 3}}
	sp := newSessionPairs(t, cfg, false)
	p := fecParams{data: 10, parity: 3, maxParity: 3}
	cli, srv := sp.addPair(t, p)
	now := time.Now()
	dec := srv.fec.dec

	// Codec churn: each group is data-1 tiny data shards and one parity
	// shard, which completes it and needs the pair's codec.
	group := uint32(1 << 20)
	var bodies [][]byte
	outside := 0
	for pair := range 72 * 4 {
		data, par := 1+pair%64, 1+(pair/64)%32
		if pair%2 == 1 {
			data, par = 1+pair%12, 1+pair%4 // near the negotiated counts
		}
		group++
		for i := range data - 1 {
			bodies = append(bodies, fecShard(group, i, false, data, par, 1))
		}
		bodies = append(bodies, fecShard(group, data, true, data, par, 8))
		if data > p.data || par > p.maxParity {
			outside += data
		}
	}
	malformed0 := srv.Stats().Drops.Malformed
	sp.inject(cli, srv, frameFEC, bodies, now)
	st := dec.Stats()
	t.Logf("%d shards, %d outside RS(10,3): %d dropped as malformed, %d codecs built", len(bodies), outside, srv.Stats().Drops.Malformed-malformed0, st.CodecBuilds)
	require.GreaterOrEqual(t, srv.Stats().Drops.Malformed-malformed0, uint64(outside), "shards claiming more than negotiated are dropped and counted")
	require.LessOrEqual(t, st.CodecBuilds, uint64(p.data*p.maxParity+1), "codecs only for the negotiated pairs")

	// Memory: 64 groups of 9 of their 10 data shards, first 11 bytes
	// each (a full-MTU buffer each before), then full size.
	limits := fecLimits(p, srv.ep.set.fecMaxPacket())
	for _, size := range []int{1, srv.ep.set.fecMaxPacket()} {
		bodies, sent := bodies[:0], 0
		for range 64 {
			group++
			for i := range p.data - 1 {
				s := fecShard(group, i, false, p.data, p.parity, size)
				bodies = append(bodies, s)
				sent += len(s)
			}
		}
		sp.inject(cli, srv, frameFEC, bodies, now)
		held := dec.Held()
		t.Logf("shards of %d bytes: %d bytes sent, decoder holds %d (budget %d)", fec.HeaderSize+size, sent, held, limits.MaxBytes)
		require.LessOrEqual(t, held, limits.MaxBytes)
		if size == 1 {
			require.LessOrEqual(t, held, 64*(p.data-1)*16+64*(p.data+p.maxParity)*srv.ep.set.fecMaxPacket()/8,
				"tiny shards pin a 16-byte class each, plus what the pool keeps")
		}
	}
}

// TestACKFloodBound (issue 13, section 2 item 3): with 256 of the
// server's segments unacknowledged, a client sends datagrams packed with
// ACK segments (57 to a datagram) for the newest segment. kcp-go walks its
// send buffer from the oldest segment to the one acknowledged for every
// ACK segment, twice; uxp passed every ACK through, so each such datagram
// cost the server 57 walks of 256 segments. Now KCP sees the first ACK of
// each sent segment and repeats arrive with their sn out of range: across
// the flood, the segments walked per datagram must not exceed those of
// ordinary traffic (one ACK per datagram for a new segment) in the same
// run; repeats must not trigger fast retransmissions; and the flood must
// not disturb the session.
func TestACKFloodBound(t *testing.T) {
	const unacked, datagrams = 256, 200
	sp, cli, srv, now, lost := unackedServer(t, unacked)
	require.Equal(t, uint32(unacked), srv.arq.View(0).SndSN)
	perDatagram := (cli.ep.set.kcpMTU()) / kcpOverhead

	flood := make([][]byte, datagrams)
	for i := range flood {
		var b []byte
		for range perDatagram {
			b = kcpSeg(b, cli.id, kcp.IKCP_CMD_ACK, 0, 256, kcpx.Now(), unacked-1, 0, 0)
		}
		flood[i] = b
	}
	// Frames of one ACK each, all for the newest segment.
	for range datagrams {
		flood = append(flood, kcpSeg(nil, cli.id, kcp.IKCP_CMD_ACK, 0, 256, kcpx.Now(), unacked-1, 0, 0))
	}
	w0 := srv.arq.View(0).AckWalks
	sp.inject(cli, srv, frameKCP, flood, now)
	floodWalks := float64(srv.arq.View(0).AckWalks-w0) / float64(len(flood))
	// Each repeat also counted as a duplicate ACK for every older segment:
	// two made KCP fast-retransmit all 255 (up to 5 times each), 1.8 MB
	// sent for a few 57-byte datagrams.
	require.Zero(t, srv.Stats().Retransmissions, "repeated ACKs trigger no fast retransmission")

	// Ordinary: one ACK per datagram, each for a segment not yet
	// acknowledged, in sending order.
	ordinary := make([][]byte, unacked-1)
	for sn := range ordinary {
		ordinary[sn] = kcpSeg(nil, cli.id, kcp.IKCP_CMD_ACK, 0, 256, kcpx.Now(), uint32(sn), 0, 0)
	}
	w0 = srv.arq.View(0).AckWalks
	sp.inject(cli, srv, frameKCP, ordinary, now)
	ordinaryWalks := float64(srv.arq.View(0).AckWalks-w0) / float64(len(ordinary))
	t.Logf("send buffer segments walked per datagram: flood of %d ACKs %.1f, ordinary %.1f (before: %d per flood datagram)",
		perDatagram, floodWalks, ordinaryWalks, 2*perDatagram*unacked)
	require.LessOrEqual(t, floodWalks, ordinaryWalks, "a flood datagram makes KCP walk no more than an ordinary one")
	require.Zero(t, srv.Stats().Drops.Malformed, "ACK segments are well-formed: passed on, not dropped")
	require.Equal(t, stateEstablished, srv.state)

	// The session still works: the segments reach the client at last, and
	// its real ACKs clear the server's send buffer.
	feed(cli, lost, sp.srvAP, now)
	cli.pump(now)
	cli.shard.flushSends()
	feed(srv, sp.cliOut.take(), sp.cliAP, now)
	require.Zero(t, srv.arq.View(0).WaitSnd, "real ACKs still acknowledge")
}

// TestRecvMemoryBound (issue 13, section 2 item 4): a client announces a
// 256-fragment message and never finishes it, then sends empty segments
// beyond a hole, all within KCP's receive window. kcp-go copies every
// segment it stores into a 1,500-byte buffer: 12.5 KB sent pinned 726 KB
// per lane. Now a fragment count no MaxMessageSize message needs is
// malformed, and what a lane stores is bounded by the window it
// advertised, the session's lanes together by recvBudgetSegs; measured
// both from the session's accounting and from the heap after GC.
func TestRecvMemoryBound(t *testing.T) {
	for _, lanes := range []int{1, 4} {
		t.Run(fmt.Sprintf("lanes=%d", lanes), func(t *testing.T) {
			cfg := &Config{Lanes: make([]LaneConfig, lanes)}
			sp := newSessionPairs(t, cfg, false)
			cli, srv := sp.addPair(t, fecParams{})
			now := time.Now()
			set := srv.ep.set
			window := set.recvWindow
			heap0, _ := settledMemory()

			frame := func(lane int, b []byte) []byte {
				if lane == 0 {
					return b
				}
				return append([]byte{byte(lane)}, b...)
			}
			kind := func(lane int) byte {
				if lane == 0 {
					return frameKCP
				}
				return frameLane
			}
			sent := 0
			for lane := range lanes {
				rcvNxt, _, _, ok := testKCP.RecvState(srv.arq.MakeKCP(lane))
				require.True(t, ok)
				// Per datagram, as many empty segments as fit.
				perDatagram := (cli.ep.set.kcpMTU() - laneIDSize) / kcpOverhead
				var segs [][]byte
				// The attack: frg 255 down, then beyond a hole.
				for i := range 2 * window {
					sn := rcvNxt + uint32(i)
					frg := byte(max(0, 255-i))
					if i >= 255 {
						sn++ // the hole
						frg = 0
					}
					segs = append(segs, kcpSeg(nil, cli.id, kcp.IKCP_CMD_PUSH, frg, 256, kcpx.Now(), sn, 0, 0))
				}
				// Complete one-segment messages beyond the hole, across twice
				// the window: what KCP's own window check lets through.
				for i := 1; i < 2*window; i++ {
					segs = append(segs, kcpSeg(nil, cli.id, kcp.IKCP_CMD_PUSH, 0, 256, kcpx.Now(), rcvNxt+uint32(i), 0, 0))
				}
				// Incomplete messages with the largest fragment count allowed.
				base := rcvNxt + uint32(2*window) + 10
				for i := range 2 * window {
					segs = append(segs, kcpSeg(nil, cli.id, kcp.IKCP_CMD_PUSH, byte(set.maxFrag()), 256, kcpx.Now(), base+uint32(i), 0, 0))
				}
				for i := 0; i < len(segs); i += perDatagram {
					var b []byte
					for _, s := range segs[i:min(i+perDatagram, len(segs))] {
						b = append(b, s...)
					}
					sent += len(b)
					sp.inject(cli, srv, kind(lane), [][]byte{frame(lane, b)}, now)
				}
			}
			held := srv.recvHeldBytes()
			heap1, _ := settledMemory()
			budget := set.recvBudgetSegs() * kcpSegBuf
			t.Logf("%d lanes: %d bytes sent; session holds %d bytes in stored segments (budget %d, %d per lane); heap grew %d",
				lanes, sent, held, budget, (window+int(set.recvSlack()))*kcpSegBuf, int64(heap1)-int64(heap0))
			require.LessOrEqual(t, held, budget)
			for l := range srv.arq.Len() {
				_, _, h, _ := testKCP.RecvState(srv.arq.MakeKCP(l))
				require.LessOrEqual(t, h, window+int(set.recvSlack()), "a lane stores at most its advertised window and slack")
			}
			// The heap, which also holds the KCPs' rings and receive heaps
			// (a few KB per lane), stays within the budget plus 64 KB.
			require.Less(t, int64(heap1)-int64(heap0), int64(budget+64<<10))
			require.NotZero(t, srv.Stats().Drops.Malformed, "fragment counts past maxFrag are malformed")
			require.Equal(t, stateEstablished, srv.state)
		})
	}
}

// TestSegmentFieldBounds audits every KCP header field a peer controls:
// each case is one lane-0 frame with one field out of bounds, which must
// be dropped and counted under the reason given, leave the session
// established, and not stop a real message afterwards.
func TestSegmentFieldBounds(t *testing.T) {
	sp := newSessionPairs(t, &Config{}, false)
	cli, srv := sp.addPair(t, fecParams{})
	now := time.Now()
	rcvNxt, rcvEnd, _, ok := testKCP.RecvState(srv.arq.MakeKCP(0))
	require.True(t, ok)
	id := cli.id
	push := func(frg byte, sn, una uint32, n int) []byte {
		return kcpSeg(nil, id, kcp.IKCP_CMD_PUSH, frg, 256, kcpx.Now(), sn, una, n)
	}
	maxFrag := byte(srv.ep.set.maxFrag())
	// Record header bits (internal/wire record.go).
	const (
		ack, wask, wins = 1, 2, 3
		u, l, f         = wire.RecordFlagU, wire.RecordFlagL, wire.RecordFlagF
	)
	reserved := func(b []byte) []byte { b[0] |= 0x20; return b }
	for _, tt := range []struct {
		name      string
		frame     []byte
		recvBound bool // counted in RecvBound, not Malformed
	}{
		{"reserved bit in a record header", reserved(records(t, push(0, rcvNxt+1, 0, 1))), false},
		{"ACK with a payload", rawRecord(ack|u|l, 0, 256, 0, 0, 0, 4, make([]byte, 4)), false},
		{"ACK with data to the end", rawRecord(ack|u, 0, 256, 0, 0, 0, 0, make([]byte, 4)), false},
		{"ACK with a fragment number", rawRecord(ack|u|f, 0, 256, 0, 0, 3, 0, nil), false},
		{"WASK with a payload", rawRecord(wask|u, 0, 256, 0, uint16(rcvNxt), 0, 0, []byte{1}), false},
		{"WINS with a fragment number", rawRecord(wins|u|f, 0, 256, 0, uint16(rcvNxt), 1, 0, nil), false},
		{"len missing on a record before the last", append(rawRecord(ack|u, 0, 256, 0, 0, 0, 0, nil), rawRecord(ack, 0, 0, 0, 0, 0, 0, nil)...), false},
		{"truncated record", rawRecord(u, 0, 256, 0, uint16(rcvNxt+1), 0, 0, nil)[:7], false},
		{"frg past what MaxMessageSize needs", records(t, push(maxFrag+1, rcvNxt+1, 0, 1)), false},
		{"una past what was sent", records(t, push(0, rcvNxt+1, srv.arq.View(0).SndSN+1, 1)), false},
		{"len past the frame", rawRecord(u|l, 0, 256, 0, uint16(rcvNxt+1), 0, 10, make([]byte, 5)), false},
		{"trailing bytes", append(rawRecord(u|l, 0, 256, 0, uint16(rcvNxt-1), 0, 1, []byte{0}), 1, 2, 3), false}, // a repeat, then junk
		{"sn past the advertised window and its slack", records(t, push(0, rcvEnd+srv.ep.set.recvSlack(), 0, 1)), true},
		// The farthest a 16-bit sn reaches from the receiver's rcv_nxt.
		{"sn far past the window", records(t, push(0, rcvNxt+1<<15-1, 0, 1)), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.Stats().Drops
			sp.injectRaw(cli, srv, frameKCP, [][]byte{tt.frame}, now)
			after := srv.Stats().Drops
			if tt.recvBound {
				require.Equal(t, before.RecvBound+1, after.RecvBound)
			} else {
				require.Equal(t, before.Malformed+1, after.Malformed)
			}
			require.Equal(t, stateEstablished, srv.state)
			_, _, held, _ := testKCP.RecvState(srv.arq.View(0).KCP)
			require.Zero(t, held, "nothing out of bounds is stored")
		})
	}
	// A real message still arrives.
	h := newRecordConn()
	srv.SetHandler(h)
	_, err := cli.Write([]byte("after"))
	require.NoError(t, err)
	cli.pump(now)
	cli.shard.flushSends()
	feed(srv, sp.cliOut.take(), sp.cliAP, now)
	_, msgs, _ := h.snapshot()
	require.Equal(t, [][]byte{[]byte("after")}, msgs)
}

// TestOversizeMessageEndsSession: a message over the receiver's
// MaxMessageSize (within the fragment bound, so it reaches reassembly) ends
// the session with a protocol error on the receiver, and the sender sees
// close code CloseProtocolError from its peer; a message at the limit
// before it is delivered.
func TestOversizeMessageEndsSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srvCfg := DefaultConfig()
		srvCfg.MaxMessageSize = 16 << 10
		p := newSimPair(t, 1, srvCfg, DefaultConfig(), true)
		ok := bytes.Repeat([]byte{1}, 16<<10)
		_, err := p.cli.Conn().Write(ok)
		require.NoError(t, err)
		_, err = p.cli.Conn().Write(bytes.Repeat([]byte{2}, 30000))
		require.NoError(t, err, "the sender's own MaxMessageSize is 64 KiB")
		time.Sleep(5 * time.Second)
		synctest.Wait()

		_, msgs, closed := p.srvH.handler(0).snapshot()
		require.Len(t, msgs, 1, "the message at the limit arrived, the oversize one did not")
		require.Equal(t, ok, msgs[0])
		require.Len(t, closed, 1)
		var pe *ProtocolError
		require.ErrorAs(t, closed[0], &pe)

		_, _, cliClosed := p.cliH.snapshot()
		require.Len(t, cliClosed, 1)
		var ce *CloseError
		require.ErrorAs(t, cliClosed[0], &ce)
		require.True(t, ce.Remote)
		require.Equal(t, CloseProtocolError, ce.Code)
	})
}
