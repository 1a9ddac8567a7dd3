package uxp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/netsim"
	"github.com/uxp-go/uxp/internal/wire"
)

// Records whose first record leaves out una and wnd (docs/protocol.md
// section 3.5, record_u.go).

// laneSeqs checks that every lane delivers 8-byte message indexes 0, 1,
// 2, ... in order, each once.
type laneSeqs struct {
	NopHandler
	mu   sync.Mutex
	next [2]int
	bad  int
}

func (h *laneSeqs) OnNewLaneDataComing(_ *Conn, lane int, b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if lane >= len(h.next) || len(b) != 8 || binary.LittleEndian.Uint64(b) != uint64(h.next[lane]) {
		h.bad++
		return
	}
	h.next[lane]++
}

func (h *laneSeqs) counts() (next [2]int, bad int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.next, h.bad
}

// TestRecordUnaWndLossReorder: both sides send on two lanes at once
// through a link that loses, reorders and duplicates packets, while
// leaving una and wnd out of most data frames; the updates lost or
// overtaken on the way are repaired by the frames that carry them again.
// Every message arrives once and in order, nothing is malformed or out of
// bounds, and both sides did leave una and wnd out.
func TestRecordUnaWndLossReorder(t *testing.T) {
	const n = 3000
	for _, tc := range []struct {
		name string
		link netsim.Impairment
	}{
		{"loss", netsim.Impairment{Loss: 0.05, Delay: 10 * time.Millisecond}},
		{"reorder", netsim.Impairment{Reorder: 0.2, ReorderDelay: 15 * time.Millisecond, Delay: 10 * time.Millisecond}},
		{"loss-reorder-dup", netsim.Impairment{Loss: 0.05, Reorder: 0.1, ReorderDelay: 15 * time.Millisecond, Duplicate: 0.03, Delay: 10 * time.Millisecond, Jitter: 2 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var withU, withoutU [2]atomic.Int64 // [client, server]
				count := func(side int) func(kind byte, body []byte) {
					return func(kind byte, body []byte) {
						if kind != wire.FrameKCP && kind != wire.FrameLane || len(body) == 0 {
							return
						}
						if body[0]&wire.RecordFlagU != 0 {
							withU[side].Add(1)
						} else {
							withoutU[side].Add(1)
						}
					}
				}
				lanes := []LaneConfig{{}, {}}
				cli, srv := &Config{Lanes: lanes}, &Config{Lanes: lanes}
				hooksOf(cli).rewriteFrame = count(0)
				hooksOf(srv).rewriteFrame = count(1)
				p := newSimPair(t, 91, srv, cli, false)
				p.net.SetDefault(tc.link)
				cliH, srvH := &laneSeqs{}, &laneSeqs{}
				require.NoError(t, p.cli.Start(t.Context()))
				conn := p.cli.Conn()
				conn.SetHandler(cliH)
				time.Sleep(100 * time.Millisecond)
				p.srvH.mu.Lock()
				sconn := p.srvH.conns[0]
				p.srvH.mu.Unlock()
				sconn.SetHandler(srvH)
				send := func(c *Conn) {
					msg := make([]byte, 8)
					var idx [2]int
					for i := range n {
						for lane := range 2 {
							if lane == 1 && i%3 != 0 {
								continue // lane 1 carries a third as many
							}
							binary.LittleEndian.PutUint64(msg, uint64(idx[lane]))
							idx[lane]++
							for {
								_, err := c.WriteLane(lane, msg)
								if err == nil {
									break
								}
								require.ErrorIs(t, err, ErrWouldBlock)
								time.Sleep(time.Millisecond)
							}
						}
						if i%50 == 0 {
							time.Sleep(5 * time.Millisecond)
						}
					}
				}
				var wg sync.WaitGroup
				wg.Go(func() { send(conn) })
				wg.Go(func() { send(sconn) })
				wg.Wait()
				want := [2]int{n, (n + 2) / 3}
				for range 300 {
					a, _ := cliH.counts()
					b, _ := srvH.counts()
					if a == want && b == want {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				a, badA := cliH.counts()
				b, badB := srvH.counts()
				cst, sst := conn.Stats(), sconn.Stats()
				t.Logf("client frames with U %d, without %d; server %d, %d; retransmissions %d, %d",
					withU[0].Load(), withoutU[0].Load(), withU[1].Load(), withoutU[1].Load(), cst.Retransmissions, sst.Retransmissions)
				require.Equal(t, want, a, "the server's messages reach the client")
				require.Equal(t, want, b, "the client's messages reach the server")
				require.Zero(t, badA+badB, "in order, once")
				for _, d := range []DropStats{cst.Drops, sst.Drops} {
					require.Zero(t, d.Malformed)
					require.Zero(t, d.RecvBound)
				}
				require.Positive(t, withoutU[0].Load(), "the client left una and wnd out")
				require.Positive(t, withoutU[1].Load(), "the server left una and wnd out")
			})
		})
	}
}

// TestRecordHostileWithoutU: a peer that never sends una or wnd on a
// lane (every record without U, from the lane's first frame) gets its
// in-order messages delivered and nothing more: the receiver holds the
// lane's initial una (0) and KCP's initial window for it, its receive
// bounds still count and leave out segments past its window, and it still
// sends on the lane.
func TestRecordHostileWithoutU(t *testing.T) {
	cfg := &Config{Lanes: []LaneConfig{{}, {}}}
	var rec func(kind byte, body []byte) // the test's goroutine drives both sides
	hooksOf(cfg).rewriteFrame = func(kind byte, body []byte) {
		if rec != nil {
			rec(kind, body)
		}
	}
	sp := newSessionPairs(t, cfg, false)
	cli, srv := sp.addPair(t, fecParams{})
	now := time.Now()
	h := newRecordConn()
	srv.SetHandler(h)
	const lane = 1 // never used before: no una or wnd was ever sent on it
	rcvNxt, rcvEnd, _, ok := testKCP.RecvState(srv.arq.MakeKCP(lane))
	require.True(t, ok)
	set := srv.ep.set
	const (
		ack = 1
		l   = wire.RecordFlagL
	)
	const msgs = 40
	var want [][]byte
	for i := range msgs {
		msg := []byte(fmt.Sprintf("msg-%02d", i))
		want = append(want, msg)
		body := append([]byte{wire.LaneMsgPlain}, msg...)
		frame := []byte{lane}
		// The message, in order; an empty segment far past the window;
		// an ACK for a segment never sent; none with U.
		frame = append(frame, rawRecord(l, 0, 0, uint16(i*7), uint16(rcvNxt+uint32(i)), 0, uint16(len(body)), body)...)
		frame = append(frame, rawRecord(l, 0, 0, 0, uint16(rcvEnd+set.recvSlack()+uint32(i)), 0, 0, nil)...)
		frame = append(frame, rawRecord(ack, 0, 0, 0xffff, uint16(9000+i), 0, 0, nil)...)
		before := srv.Stats().Drops
		sp.injectRaw(cli, srv, frameLane, [][]byte{frame}, now)
		after := srv.Stats().Drops
		require.Equal(t, before.RecvBound+1, after.RecvBound, "the segment past the window is left out")
		require.Equal(t, before.Malformed, after.Malformed)
		_, _, held, _ := testKCP.RecvState(srv.arq.View(lane).KCP)
		require.LessOrEqual(t, held, set.recvWindow+int(set.recvSlack()))
	}
	_, got, _ := h.snapshot()
	require.Equal(t, want, got, "the in-order messages arrive")
	v := srv.arq.View(lane)
	require.Zero(t, v.PeerUna, "una never moved")
	require.EqualValues(t, kcp.IKCP_WND_RCV, v.PeerWnd, "the window is KCP's initial one")
	require.Equal(t, stateEstablished, srv.state)

	// The server still sends on the lane: the reply leaves at once, in a
	// frame that states una (the 40 messages) and wnd.
	var frames [][]byte
	rec = func(kind byte, body []byte) {
		if kind == wire.FrameLane {
			frames = append(frames, bytes.Clone(body))
		}
	}
	_, err := srv.WriteLane(lane, []byte("reply"))
	require.NoError(t, err)
	srv.pump(now)
	srv.shard.flushSends()
	rec = nil
	require.NotEmpty(t, sp.srvOut.take())
	require.NotEmpty(t, frames)
	segs, ok := wire.Expand(nil, frames[len(frames)-1], wire.Refs{Conv: srv.id})
	require.True(t, ok)
	var data []byte
	for q := segs; len(q) > 0; {
		s, rest, _ := wire.NextSegment(q)
		if s.Cmd() == wire.CmdPush {
			data = s.Data()
			require.Equal(t, rcvNxt+msgs, s.Una())
		}
		q = rest
	}
	require.Equal(t, append([]byte{wire.LaneMsgPlain}, "reply"...), data)
}
