package uxp

import (
	"bytes"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// pollAll drains g every tick until stop says so, returning copies of the
// events (Data copied, buffers released).
func pollAll(t testing.TB, g *PollGroup, tick time.Duration, stop func([]PollEvent) bool) []PollEvent {
	t.Helper()
	var got []PollEvent
	for deadline := time.Now().Add(time.Minute); !stop(got); {
		require.True(t, time.Now().Before(deadline), "events not seen in time")
		for _, ev := range g.Poll(0) {
			cp := ev
			cp.Data = bytes.Clone(ev.Data)
			cp.buf = nil
			ev.Release()
			got = append(got, cp)
		}
		time.Sleep(tick)
	}
	return got
}

func countKind(evs []PollEvent, k PollEventKind) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

// TestPollGroup runs a server whose sessions all feed one poll group,
// drained by a 20 Hz loop: every session's connected event, its lane
// messages in order with their lanes, its datagrams, and its closed event
// come out of Poll, in order per session.
func TestPollGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const clients, msgs = 4, 50
		g, err := NewPollGroup(nil)
		require.NoError(t, err)
		cfg := &Config{Lanes: []LaneConfig{{}, {}}}
		n := newSimServer(t, 5, g.ServerHandler(), cfg, cfg)
		var cls []*Client
		for i := range clients {
			cl := n.dial(t, i, nil)
			cls = append(cls, cl)
			for j := range msgs {
				_, err := cl.Conn().WriteLane(j%2, fmt.Appendf(nil, "%d:%d", i, j))
				require.NoError(t, err)
			}
			require.NoError(t, cl.Conn().WriteDatagram([]byte("dg")))
		}
		evs := pollAll(t, g, 50*time.Millisecond, func(evs []PollEvent) bool {
			return countKind(evs, PollMessage) == clients*msgs && countKind(evs, PollDatagram) == clients
		})
		for _, cl := range cls {
			require.NoError(t, cl.Close())
		}
		evs = append(evs, pollAll(t, g, 50*time.Millisecond, func(evs []PollEvent) bool {
			return countKind(evs, PollClosed) == clients
		})...)

		perConn := map[*Conn][]PollEvent{}
		for _, ev := range evs {
			perConn[ev.Conn] = append(perConn[ev.Conn], ev)
		}
		require.Len(t, perConn, clients)
		for c, evs := range perConn {
			require.Equal(t, PollConnected, evs[0].Kind, "connected first")
			last := evs[len(evs)-1]
			require.Equal(t, PollClosed, last.Kind, "closed last")
			require.ErrorIs(t, last.Err, ErrPeerClosed)
			next := [2]int{0, 1}
			var client = -1
			for _, ev := range evs[1 : len(evs)-1] {
				if ev.Kind == PollDatagram {
					require.Equal(t, "dg", string(ev.Data))
					continue
				}
				require.Equal(t, PollMessage, ev.Kind)
				var i, j int
				_, err := fmt.Sscanf(string(ev.Data), "%d:%d", &i, &j)
				require.NoError(t, err)
				if client < 0 {
					client = i
				}
				require.Equal(t, client, i, "one session's messages (%v)", c.ID())
				require.Equal(t, next[ev.Lane], j, "in order on lane %d", ev.Lane)
				require.Equal(t, j%2, ev.Lane)
				next[ev.Lane] += 2
			}
			require.Equal(t, [2]int{msgs, msgs + 1}, next)
		}
		require.Zero(t, g.Stats().Queued)
		require.EqualValues(t, len(evs), g.Stats().Events)
	})
}

// TestPollGroupBound: with nobody polling, reliable messages stop at the
// queue's bound (backpressure: they wait in the sender's lane) and
// datagrams beyond it are dropped and counted; once the loop polls, every
// reliable message arrives, in order.
func TestPollGroupBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const msgs = 300
		g, err := NewPollGroup(&PollGroupConfig{MaxEvents: 16})
		require.NoError(t, err)
		n := newSimServer(t, 6, g.ServerHandler(), nil, nil)
		n.net.SetDefault(netsim.Impairment{Delay: 10 * time.Millisecond})
		c := n.dial(t, 0, nil).Conn()
		for i := range msgs {
			writeRetry(t, c, fmt.Appendf(nil, "%04d", i))
		}
		time.Sleep(2 * time.Second)
		st := g.Stats()
		require.LessOrEqual(t, st.Queued, 16+1, "the bound holds (plus the connected event)")
		require.Positive(t, st.Backpressure)
		require.Positive(t, c.sendQueued(), "the rest waits at the sender")

		for range 10 {
			require.NoError(t, c.WriteDatagram([]byte("dropped")))
		}
		time.Sleep(time.Second)
		require.EqualValues(t, 10, g.Stats().DatagramsDropped)

		evs := pollAll(t, g, 50*time.Millisecond, func(evs []PollEvent) bool {
			return countKind(evs, PollMessage) == msgs
		})
		i := 0
		for _, ev := range evs {
			if ev.Kind == PollMessage {
				require.Equal(t, fmt.Sprintf("%04d", i), string(ev.Data))
				i++
			}
		}
		require.Zero(t, countKind(evs, PollDatagram))
	})
}

// TestPollGroupConfig rejects negative bounds.
func TestPollGroupConfig(t *testing.T) {
	for _, cfg := range []*PollGroupConfig{{MaxEvents: -1}, {MaxBytes: -1}} {
		_, err := NewPollGroup(cfg)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce)
	}
}

// TestPollBufPool: Release returns pool-sized buffers once, even when
// called through two copies of one event, and leaves larger ones to the
// collector.
func TestPollBufPool(t *testing.T) {
	p, gen, b := getPollBuf(100)
	require.Len(t, b, 100)
	require.Equal(t, pollBufSize, cap(p.b))
	ev := PollEvent{Kind: PollMessage, Data: b, buf: p, gen: gen}
	cp := ev
	ev.Release()
	require.Nil(t, ev.Data)
	require.Equal(t, gen+1, p.gen.Load())
	cp.Release() // a stale copy: no second return to the pool
	require.Equal(t, gen+1, p.gen.Load())

	p, _, b = getPollBuf(pollBufSize + 1)
	require.Nil(t, p)
	require.Len(t, b, pollBufSize+1)
	putPollBuf(&pollBuf{b: make([]byte, 10)}) // foreign: rejected, no panic
}

// pollSink is the callback baseline of BenchmarkPollGroup: what a handler
// that consumes messages on the worker does.
type pollSink struct {
	NopHandler
	sum int
}

func (s *pollSink) OnNewLaneDataComing(_ *Conn, lane int, data []byte) { s.sum += len(data) + lane }

// BenchmarkPollGroup is the cost per message of delivering through a poll
// group (copy into a pooled buffer, queue, Poll, Release) against a
// callback that consumes the message in place, and against a callback
// that copies it onto a channel for the game loop, for 200-byte messages
// drained 64 at a time as a tick would. The session's own receive path
// (decryption, KCP) comes on top of all three:
//
//	go test -run '^$' -bench BenchmarkPollGroup .
func BenchmarkPollGroup(b *testing.B) {
	const batch = 64
	msg := make([]byte, 200)
	c := &Conn{}
	b.Run("Callback", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		var h LaneHandler = &pollSink{}
		for b.Loop() {
			h.OnNewLaneDataComing(c, 1, msg)
		}
	})
	b.Run("CallbackChannel", func(b *testing.B) {
		// What a game loop does without poll groups: the callback copies
		// the message and hands it over on a channel.
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		type item struct {
			lane int
			data []byte
		}
		ch := make(chan item, batch)
		sum, i := 0, 0
		for b.Loop() {
			ch <- item{1, bytes.Clone(msg)}
			if i++; i == batch {
				i = 0
				for range batch {
					it := <-ch
					sum += len(it.data) + it.lane
				}
			}
		}
	})
	b.Run("PollGroup", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		g, _ := NewPollGroup(nil)
		h := g.Handler().(LaneHandler)
		sum, i := 0, 0
		for b.Loop() {
			h.OnNewLaneDataComing(c, 1, msg)
			if i++; i == batch {
				i = 0
				for _, ev := range g.Poll(0) {
					sum += len(ev.Data) + ev.Lane
					ev.Release()
				}
			}
		}
	})
}

// TestPollGroupClient: a dialled session in a poll group (Handler) reports
// its connection first, and a PollWritable once after ErrWouldBlock.
func TestPollGroupClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := NewPollGroup(nil)
		require.NoError(t, err)
		n := newSimServer(t, 12, &connCollector{}, nil, smallQueue)
		n.net.SetDefault(netsim.Impairment{Delay: 20 * time.Millisecond})
		c := n.dial(t, 0, g.Handler()).Conn()
		fillQueue(t, c)
		evs := pollAll(t, g, 50*time.Millisecond, func(evs []PollEvent) bool {
			return countKind(evs, PollWritable) == 1
		})
		require.Equal(t, PollConnected, evs[0].Kind)
		require.Same(t, c, evs[0].Conn)
		time.Sleep(2 * time.Second)
		require.Empty(t, g.Poll(0), "one PollWritable per ErrWouldBlock")
	})
}

// TestPollInto drains into the caller's slice, in order, a slice-full at a
// time, without allocating.
func TestPollInto(t *testing.T) {
	g, err := NewPollGroup(nil)
	require.NoError(t, err)
	c := &Conn{}
	h := g.Handler()
	h.OnReady(c)
	for i := range 9 {
		h.(LaneHandler).OnNewLaneDataComing(c, i%2, []byte{byte(i)})
	}
	var buf [4]PollEvent
	var got []PollEvent
	for {
		n := g.PollInto(buf[:])
		if n == 0 {
			break
		}
		require.LessOrEqual(t, n, len(buf))
		for i := range buf[:n] {
			ev := buf[i]
			ev.Data = bytes.Clone(ev.Data)
			buf[i].Release()
			got = append(got, ev)
		}
	}
	require.Len(t, got, 10)
	require.Equal(t, PollConnected, got[0].Kind)
	for i, ev := range got[1:] {
		require.Equal(t, PollMessage, ev.Kind)
		require.Equal(t, i%2, ev.Lane)
		require.Equal(t, []byte{byte(i)}, ev.Data)
	}
	require.Zero(t, g.Stats().Queued)
	require.Zero(t, g.Stats().QueuedBytes)
	if !raceEnabled {
		msg := make([]byte, 200)
		allocs := testing.AllocsPerRun(100, func() {
			h.(LaneHandler).OnNewLaneDataComing(c, 0, msg)
			g.PollInto(buf[:])
			buf[0].Release()
		})
		require.Zero(t, allocs)
	}
}
