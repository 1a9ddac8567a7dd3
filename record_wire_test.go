package uxp

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
	"github.com/uxp-go/uxp/internal/wire"
)

// The compact segment records on the wire (docs/protocol.md section 3.5),
// through the whole engine.

// TestRecordFullDatagram: once path MTU discovery has settled, a
// full-size data datagram carries the packet size less the transport
// overhead and a 10-byte record header of payload: it is exactly the
// packet size when its record carries una and wnd (U), 4 bytes less when
// it leaves them out; no KCP frame exceeds the frame room.
func TestRecordFullDatagram(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var frames [][]byte
		record := false
		cli := &Config{}
		hooksOf(cli).rewriteFrame = func(kind byte, body []byte) {
			mu.Lock()
			defer mu.Unlock()
			if record && kind == wire.FrameKCP {
				frames = append(frames, bytes.Clone(body))
			}
		}
		p := newSimPair(t, 81, &Config{}, cli, true)
		p.net.SetDefault(netsim.Impairment{Delay: 10 * time.Millisecond})
		conn := p.cli.Conn()
		time.Sleep(2 * time.Second) // path MTU discovery reaches the configured MTU
		pmtu := conn.PathMTU()
		require.Equal(t, conn.MTU(), pmtu)
		mu.Lock()
		record = true
		mu.Unlock()
		msg := testMessage(81, 60_000)
		writeRetry(t, conn, msg)
		time.Sleep(time.Second)
		_, got, _ := p.srvH.handler(0).snapshot()
		require.Len(t, got, 1)
		require.True(t, bytes.Equal(msg, got[0]))

		mu.Lock()
		defer mu.Unlock()
		room := conn.ep.set.frameRoomAt(pmtu)
		full, withoutU := 0, 0
		for _, f := range frames {
			require.LessOrEqual(t, len(f), room)
			segs, ok := wire.Expand(nil, f, wire.Refs{})
			require.True(t, ok)
			s, rest, _ := wire.NextSegment(segs)
			if len(rest) == 0 && s.Cmd() == wire.CmdPush && s.Frg() > 0 {
				// Every fragment but the last of a 60,000-byte message.
				if f[0]&wire.RecordFlagU != 0 {
					require.Equal(t, room, len(f), "a full-size data frame with U fills the datagram")
				} else {
					require.Equal(t, room-4, len(f), "a full-size data frame without U is 4 bytes short")
					withoutU++
				}
				require.Equal(t, pmtu-wire.TransportOverhead-wire.RecordLastMaxHeader, len(s.Data()))
				full++
			}
		}
		t.Logf("%d full-size data datagrams of %d bytes, %d without U, %d bytes of payload each", full, pmtu, withoutU, pmtu-wire.TransportOverhead-wire.RecordLastMaxHeader)
		// How many leave U out depends on how the pacer spaces them
		// against the quarter-RTT renewal (7 to 33 of 41 seen);
		// TestRecordUnaWndLossReorder checks that flows do leave it out.
		require.GreaterOrEqual(t, full, 60_000/pmtu-1)
	})
}

// TestRecordSequenceWrap: 70,000 one-segment messages on a lane through
// a link with 1 % loss each way carry sequence numbers past 2^16, where
// the 16 bits on the wire wrap; every message arrives, in order, once,
// and nothing is dropped as malformed or out of bounds.
func TestRecordSequenceWrap(t *testing.T) {
	const n = 70_000
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{Lanes: []LaneConfig{{}, {}}}
		p := newSimPair(t, 82, cfg, cfg, false)
		p.net.SetDefault(netsim.Impairment{Loss: 0.01, Delay: time.Millisecond})
		h := &laneSeq{}
		require.NoError(t, p.cli.Start(t.Context()))
		time.Sleep(100 * time.Millisecond)
		p.srvH.mu.Lock()
		p.srvH.conns[0].SetHandler(h)
		p.srvH.mu.Unlock()
		conn := p.cli.Conn()
		msg := make([]byte, 8)
		for i := range n {
			binary.LittleEndian.PutUint64(msg, uint64(i))
			for {
				_, err := conn.WriteLane(1, msg)
				if err == nil {
					break
				}
				require.ErrorIs(t, err, ErrWouldBlock)
				time.Sleep(time.Millisecond)
			}
		}
		for range 100 {
			h.mu.Lock()
			done := h.next == n
			h.mu.Unlock()
			if done {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		h.mu.Lock()
		next, bad := h.next, h.bad
		h.mu.Unlock()
		st := conn.Stats()
		// The lanes belong to the client's shard: read them once it has
		// stopped.
		require.NoError(t, p.cli.Close())
		sn := conn.arq.View(1).SndSN
		t.Logf("%d messages, lane sn %d, retransmissions %d", next, sn, st.Retransmissions)
		require.Equal(t, n, next, "every message arrives")
		require.Zero(t, bad, "in order, once")
		require.Greater(t, sn, uint32(1<<16), "the sequence numbers passed 2^16")
		require.NotZero(t, st.Retransmissions, "loss made KCP retransmit")
		p.srvH.mu.Lock()
		srv := p.srvH.conns[0].Stats().Drops
		p.srvH.mu.Unlock()
		require.Zero(t, srv.Malformed)
		require.Zero(t, st.Drops.Malformed)
	})
}

// laneSeq checks that lane 1 delivers 8-byte message indexes 0, 1, 2, ...
type laneSeq struct {
	NopHandler
	mu        sync.Mutex
	next, bad int
}

func (h *laneSeq) OnNewLaneDataComing(_ *Conn, lane int, b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if lane != 1 || len(b) != 8 || binary.LittleEndian.Uint64(b) != uint64(h.next) {
		h.bad++
	}
	h.next++
}

// TestEmitKCPSplitsRecords: after the packet size shrinks, a frame of
// segments KCP built for the larger size is split at segment boundaries
// into record frames that fit, each starting with una and wnd (U) even
// where its first segment shared them with the one before; a segment too
// large alone travels in fragments whose inner frame is its record.
// Together they carry exactly the original segments, in order.
func TestEmitKCPSplitsRecords(t *testing.T) {
	var kinds []byte
	var bodies [][]byte
	cfg := &Config{}
	hooksOf(cfg).rewriteFrame = func(kind byte, body []byte) {
		kinds = append(kinds, kind)
		bodies = append(bodies, bytes.Clone(body))
	}
	p := newFramePairConfig(t, cfg)
	c := p.cli
	c.pmtu.cur = minMTU
	room := c.ep.set.frameRoomAt(minMTU)
	ack, push := byte(wire.CmdAck), byte(wire.CmdPush)
	data := func(b []byte, n int) []byte { // data that shows where it went
		for i := range n {
			b[len(b)-n+i] = byte(len(b) + i)
		}
		return b
	}
	segs := kcpSeg(nil, c.id, ack, 0, 256, 1, 5, 10, 0)
	for i := range 3 {
		segs = data(kcpSeg(segs, c.id, push, 0, 256, uint32(2+i), uint32(100+i), 10, 300), 300)
	}
	segs = data(kcpSeg(segs, c.id, push, 0, 256, 7, 103, 10, 1000), 1000) // larger than the room
	segs = data(kcpSeg(segs, c.id, push, 0, 256, 8, 104, 10, 20), 20)
	want := bytes.Clone(segs)
	size, ok := wire.CompactSize(segs)
	require.True(t, ok)
	require.Greater(t, size, room)
	require.Equal(t, size, c.emitKCP(0, wire.FrameKCP, nil, segs, false))

	ref := wire.Refs{Conv: c.id}
	var got, inner []byte
	frames, fragments := 0, 0
	for i, b := range bodies {
		switch kinds[i] {
		case wire.FrameKCP:
			frames++
			require.LessOrEqual(t, len(b), room, "a frame fits the packet size")
			require.NotZero(t, b[0]&wire.RecordFlagU, "every frame starts with una and wnd")
			s, ok := wire.Expand(nil, b, ref)
			require.True(t, ok)
			got = append(got, s...)
		case wire.FrameFragment:
			// The hook sees the bytes after the fragment header: the
			// fragments of the one inner frame, in order.
			fragments++
			inner = append(inner, b...)
			if i+1 == len(bodies) || kinds[i+1] != wire.FrameFragment {
				require.Equal(t, wire.FrameKCP, inner[0])
				s, ok := wire.Expand(nil, inner[1:], ref)
				require.True(t, ok)
				got = append(got, s...)
				inner = nil
			}
		default:
			t.Fatalf("frame type %d", kinds[i])
		}
	}
	t.Logf("%d bytes of segments, %d of records, room %d: %d frames, %d fragments", len(want), size, room, frames, fragments)
	require.GreaterOrEqual(t, frames, 2)
	require.GreaterOrEqual(t, fragments, 2)
	require.Empty(t, inner)
	require.True(t, bytes.Equal(want, got), "the frames carry the segments, in order")
}
