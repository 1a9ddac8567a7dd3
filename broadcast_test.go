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

// TestBroadcast sends reliable (lane 0 and lane 1), datagram and latest
// broadcasts to every session of a server, interleaved with each
// session's own writes: each client gets each message once, in order with
// the writes around it, and sessions that cannot take it are reported
// without holding the others back.
func TestBroadcast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const clients = 6
		cfg := &Config{Lanes: []LaneConfig{{}, {}}}
		col := &connCollector{}
		n := newSimServer(t, 4, col, cfg, cfg)
		recs := make([]*laneRecorder, clients)
		for i := range recs {
			recs[i] = &laneRecorder{}
			n.dial(t, i, recs[i])
		}
		waitFor(t, func() bool { return len(col.list()) == clients })
		conns := col.list()

		msg := []byte("state of the world")
		for _, c := range conns {
			_, err := c.Write([]byte("before"))
			require.NoError(t, err)
		}
		res := n.srv.Broadcast(conns, msg)
		require.Equal(t, BroadcastResult{Queued: clients}, res)
		msg[0] = 'S' // the caller may reuse msg at once
		for _, c := range conns {
			_, err := c.Write([]byte("after"))
			require.NoError(t, err)
		}
		res = n.srv.BroadcastLane(conns, 1, []byte("chat"))
		require.Equal(t, clients, res.Queued)
		require.Equal(t, clients, n.srv.BroadcastDatagram(conns, []byte("dgram")).Queued)
		require.Equal(t, clients, n.srv.BroadcastDatagramLatest(conns, 3, []byte("latest")).Queued)
		time.Sleep(time.Second)

		for i, r := range recs {
			msgs, dgrams := r.snapshot()
			var lane0, lane1 []string
			for _, m := range msgs {
				if m.lane == 0 {
					lane0 = append(lane0, string(m.data))
				} else {
					lane1 = append(lane1, string(m.data))
				}
			}
			require.Equal(t, []string{"before", "state of the world", "after"}, lane0, "client %d", i)
			require.Equal(t, []string{"chat"}, lane1, "client %d", i)
			require.Len(t, dgrams, 2, "client %d", i)
			require.ElementsMatch(t, []string{"dgram", "latest"}, []string{string(dgrams[0].data), string(dgrams[1].data)})
		}

		// Failures are per session and reported.
		other := n.dial(t, 100, nil) // a client-side Conn: not the server's
		require.NoError(t, conns[0].Close())
		waitFor(t, func() bool { return conns[0].Err() != nil })
		n.net.SetLink(n.addr, conns[1].RemoteAddr(), netsim.Impairment{Loss: 1})
		fill := func(size int) {
			for {
				if _, err := conns[1].Write(make([]byte, size)); err != nil {
					require.ErrorIs(t, err, ErrWouldBlock)
					return
				}
			}
		}
		fill(16 << 10)
		time.Sleep(100 * time.Millisecond) // ACKs of what got through before the link died
		fill(1 << 10)                      // now within 1 KB of full: 20 KB cannot fit
		targets := append([]*Conn{nil, other.Conn()}, conns...)
		res = n.srv.Broadcast(targets, bytes.Repeat([]byte{1}, 20<<10))
		require.Equal(t, clients-2, res.Queued)
		got := map[*Conn]error{}
		for _, f := range res.Failed {
			got[f.Conn] = f.Err
		}
		require.Len(t, got, 4)
		require.ErrorIs(t, got[nil], ErrNotServerSession)
		require.ErrorIs(t, got[other.Conn()], ErrNotServerSession)
		require.ErrorIs(t, got[conns[0]], ErrConnClosed)
		require.ErrorIs(t, got[conns[1]], ErrWouldBlock)

		res = n.srv.BroadcastLane(conns[2:], 2, []byte("x"))
		require.Zero(t, res.Queued)
		require.ErrorIs(t, res.Failed[0].Err, ErrNoSuchLane)
		res = n.srv.BroadcastDatagram(conns[2:], make([]byte, conns[2].MaxDatagramSize()+1))
		require.ErrorIs(t, res.Failed[0].Err, ErrMessageTooLarge)
	})
}

// BenchmarkBroadcast is one 20 Hz tick of a game server: a 200-byte
// message to each of 1,000 sessions on loopback UDP, sent by a loop of
// Write calls and by one Broadcast. Ticks start every 50 ms; each op runs
// one tick of each, alternately, so that the load of a shared machine
// falls on both alike;
// a tick ends when the server's workers have taken every message into the
// sessions' KCPs (sealing and sending follow at once). It reports, per
// tick, the whole tick (write-ns, broadcast-ns), the part spent in the
// caller's goroutine (write-call-ns, broadcast-call-ns), and the ratios
// Broadcast/Write of both (tick-ratio, call-ratio):
//
//	go test -run '^$' -bench BenchmarkBroadcast -benchtime 200x .
func BenchmarkBroadcast(b *testing.B) {
	const sessions = 1000
	col := &connCollector{}
	srv, kp := startUDPServer(b, col, nil)
	d := newLoopbackDialer(b, kp.Public)
	for range sessions {
		_, err := d.Dial(b.Context(), srv.Addr(), nil)
		require.NoError(b, err)
	}
	for len(col.list()) < sessions {
		time.Sleep(time.Millisecond)
	}
	conns := col.list()
	msg := make([]byte, 200)
	// tick runs send and waits for the workers; it returns the whole time
	// and the caller's part.
	next := time.Now()
	tick := func(send func()) (total, call time.Duration) {
		// 20 Hz: the previous tick's ACKs have been handled by now, as
		// they would be in a real server, and do not compete with this
		// tick.
		next = next.Add(50 * time.Millisecond)
		time.Sleep(time.Until(next))
		before := messagesSent(srv)
		start := time.Now()
		send()
		call = time.Since(start)
		for messagesSent(srv) < before+sessions {
			time.Sleep(50 * time.Microsecond)
		}
		return time.Since(start), call
	}
	writeLoop := func() {
		for _, c := range conns {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
	}
	broadcast := func() {
		if res := srv.Broadcast(conns, msg); res.Failed != nil {
			b.Fatal(fmt.Sprint(res.Failed[0].Err))
		}
	}
	b.ReportAllocs()
	b.SetBytes(2 * sessions * int64(len(msg)))
	var wTotal, wCall, bTotal, bCall time.Duration
	for b.Loop() {
		t, c := tick(writeLoop)
		wTotal, wCall = wTotal+t, wCall+c
		t, c = tick(broadcast)
		bTotal, bCall = bTotal+t, bCall+c
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
	b.ReportMetric(per(wTotal), "write-ns/tick")
	b.ReportMetric(per(bTotal), "broadcast-ns/tick")
	b.ReportMetric(per(wCall), "write-call-ns/tick")
	b.ReportMetric(per(bCall), "broadcast-call-ns/tick")
	b.ReportMetric(float64(bTotal)/float64(wTotal), "tick-ratio")
	b.ReportMetric(float64(bCall)/float64(wCall), "call-ratio")
}
