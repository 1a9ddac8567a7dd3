package kcpx

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"
)

// TestSendWork checks SendWork's reading of kcp-go's send
// buffer: a queued segment needs KCP's tick, a sent one its retransmission
// time, an acknowledged one nothing.
func TestSendWork(t *testing.T) {
	require.NoError(t, kcpSchedErr, "kcp-go layout changed: lanes fall back to KCP's interval tick")
	f := NewFactory(Options{Tune: func(*kcp.KCP) {}})
	var out [][]byte
	a := kcp.NewKCP(7, func(b []byte, n int) { out = append(out, append([]byte(nil), b[:n]...)) })
	b := kcp.NewKCP(7, func([]byte, int) {})
	for _, k := range []*kcp.KCP{a, b} {
		k.NoDelay(1, 10, 2, 1)
	}
	_, has, tick := f.SendWork(a)
	require.False(t, has || tick, "idle KCP has no send work")

	require.Zero(t, a.Send([]byte("hello")))
	_, _, tick = f.SendWork(a)
	require.True(t, tick, "a queued segment waits for a flush")

	f.Flush(a, kcp.IKCP_FLUSH_FULL)
	require.Len(t, out, 1)
	at, has, tick := f.SendWork(a)
	require.False(t, tick)
	require.True(t, has)
	wait := int32(at - Now())
	require.Positive(t, wait)
	require.LessOrEqual(t, wait, int32(kcp.IKCP_RTO_DEF), "retransmission time is one RTO (no RTT sample yet: the default) away")

	// The peer acknowledges: nothing left to wake for.
	require.Zero(t, b.Input(out[0], kcp.IKCP_PACKET_REGULAR, true))
	var ack [][]byte
	b2 := kcp.NewKCP(7, func(p []byte, n int) { ack = append(ack, append([]byte(nil), p[:n]...)) })
	require.Zero(t, b2.Input(out[0], kcp.IKCP_PACKET_REGULAR, true))
	f.Flush(b2, kcp.IKCP_FLUSH_ACKONLY)
	require.NotEmpty(t, ack)
	require.Zero(t, a.Input(ack[0], kcp.IKCP_PACKET_REGULAR, true))
	_, has, tick = f.SendWork(a)
	require.False(t, has || tick, "acknowledged: no send work")
}

// TestHoldTimeouts checks HoldTimeouts' reading and writing of kcp-go's
// send buffer: it offers a sent segment due by the horizon with its sn and
// the timestamp of its last copy (as on the wire), and the time the hold
// returns becomes the segment's retransmission time.
func TestHoldTimeouts(t *testing.T) {
	require.NoError(t, kcpSchedErr, "kcp-go layout changed: no timeout hold")
	f := NewFactory(Options{Tune: nodelay})
	var r recorder
	k := f.New(1, r.out, 0)
	require.Zero(t, k.Send([]byte("x")))
	f.Flush(k, kcp.IKCP_FLUSH_FULL)
	out := r.take()
	require.Len(t, out, 1)
	wireTS := binary.LittleEndian.Uint32(out[0][8:])
	at, has, _ := f.SendWork(k)
	require.True(t, has)

	// Not due by the horizon: not offered.
	calls := 0
	next, ok := f.HoldTimeouts(k, at-1, func(sn, ts uint32) (uint32, bool) { calls++; return 0, false })
	require.True(t, ok)
	require.Zero(t, calls)
	require.Equal(t, at, next)

	// Due: offered with its sn and timestamp, and held.
	next, ok = f.HoldTimeouts(k, at, func(sn, ts uint32) (uint32, bool) {
		calls++
		require.Zero(t, sn)
		require.Equal(t, wireTS, ts, "the timestamp of KCP's last copy")
		return at + 500, true
	})
	require.Equal(t, 1, calls)
	require.True(t, ok)
	require.Equal(t, at+500, next)
	held, _, _ := f.SendWork(k)
	require.Equal(t, at+500, held, "the held timeout is the segment's retransmission time")
}
