package kcpx

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/wire"
)

// Contract tests: what this package relies on in kcp-go's internals,
// checked on the build's version (the gate's audited list names those
// these tests passed on).

// recorder collects a KCP's output, copied in the callback.
type recorder struct{ pkts [][]byte }

func (r *recorder) out(b []byte, n int) { r.pkts = append(r.pkts, bytes.Clone(b[:n])) }

func (r *recorder) take() [][]byte { p := r.pkts; r.pkts = nil; return p }

// poison fills the Factory's shared flush buffer as if an earlier flush
// had left bytes in it: the next flush must not emit any of them.
func poison(f *Factory) {
	for i := range f.flushBuf {
		f.flushBuf[i] = Poison
	}
}

func nodelay(k *kcp.KCP) {
	k.NoDelay(1, 10, 2, 1)
	k.WndSize(100, 300)
	k.SetMtu(1400)
}

// TestLinkedFlush calls the linked flush on KCPs in a known state and
// checks every byte it emits: one PUSH segment for a queued message, one
// ACK for a received one, nothing when nothing is owed. The shared flush
// buffer is poisoned before each call, so bytes kept from an earlier call
// would show.
func TestLinkedFlush(t *testing.T) {
	require.NoError(t, gateErr)
	f := NewFactory(Options{Tune: nodelay})
	var ra, rb recorder
	a, b := f.New(0x01020304, ra.out, 0), f.New(0x01020304, rb.out, 0)

	require.Zero(t, a.Send([]byte("hello")))
	poison(f)
	before := Now()
	require.True(t, f.Flush(a, kcp.IKCP_FLUSH_FULL))
	after := Now()
	pkts := ra.take()
	require.Len(t, pkts, 1)
	seg := wire.Segment(pkts[0])
	require.Len(t, pkts[0], wire.SegmentHeaderSize+5)
	require.Equal(t, uint32(0x01020304), seg.Conv())
	require.Equal(t, byte(kcp.IKCP_CMD_PUSH), seg.Cmd())
	require.Zero(t, seg.Frg())
	require.Equal(t, uint16(300), seg.Wnd(), "the receive window, nothing queued")
	require.True(t, int32(seg.Ts()-before) >= 0 && int32(after-seg.Ts()) >= 0, "ts is Now at the flush")
	require.Zero(t, seg.Sn())
	require.Zero(t, seg.Una())
	require.Equal(t, uint32(5), seg.Len())
	require.Equal(t, []byte("hello"), seg.Data())

	poison(f)
	require.True(t, f.Flush(a, kcp.IKCP_FLUSH_FULL))
	require.Empty(t, ra.take(), "sent, not yet due again: nothing")

	require.Zero(t, b.Input(pkts[0], kcp.IKCP_PACKET_REGULAR, true))
	poison(f)
	require.True(t, f.Flush(b, kcp.IKCP_FLUSH_ACKONLY))
	acks := rb.take()
	require.Len(t, acks, 1)
	ack := wire.Segment(acks[0])
	require.Len(t, acks[0], wire.SegmentHeaderSize)
	require.Equal(t, uint32(0x01020304), ack.Conv())
	require.Equal(t, byte(kcp.IKCP_CMD_ACK), ack.Cmd())
	require.Equal(t, uint16(299), ack.Wnd(), "one message waits in the receive queue")
	require.Equal(t, seg.Ts(), ack.Ts(), "the ACK echoes the segment's ts")
	require.Zero(t, ack.Sn())
	require.Equal(t, uint32(1), ack.Una())
	require.Zero(t, ack.Len())

	poison(f)
	require.True(t, f.Flush(b, kcp.IKCP_FLUSH_ACKONLY))
	require.Empty(t, rb.take(), "the ACK list was emptied")

	require.Zero(t, a.Input(acks[0], kcp.IKCP_PACKET_REGULAR, true))
	require.Zero(t, a.WaitSnd())
	poison(f)
	require.True(t, f.Flush(a, kcp.IKCP_FLUSH_FULL))
	require.Empty(t, ra.take(), "acknowledged: nothing to send")
	buf := make([]byte, 16)
	n := b.Recv(buf)
	require.Equal(t, []byte("hello"), buf[:max(n, 0)])
}

// TestTwoEntryRing: a new KCP's rings have RingEntries (2) entries and
// hold one segment without growing; a second grows the ring to
// kcp.RINGBUFFER_MIN (Grown), and Trim puts a quiet KCP back on 2-entry
// rings. RecvState counts the segments the receive side holds.
func TestTwoEntryRing(t *testing.T) {
	require.NoError(t, gateErr)
	f := NewFactory(Options{Tune: nodelay})
	var ra, rb recorder
	a, b := f.New(5, ra.out, 0), f.New(5, rb.out, 0)
	require.Equal(t, [3]int{RingEntries, RingEntries, RingEntries}, inspect(t, a).Rings)
	require.True(t, f.Quiet(a))
	require.False(t, f.Grown(a))

	require.Zero(t, a.Send([]byte("one")))
	require.Equal(t, RingEntries, inspect(t, a).Rings[0], "a 2-entry ring holds one segment")
	require.False(t, f.Quiet(a))
	require.False(t, f.Grown(a))
	require.Zero(t, a.Send([]byte("two")))
	require.Equal(t, kcp.RINGBUFFER_MIN, inspect(t, a).Rings[0], "the second segment grows the ring")
	require.True(t, f.Grown(a))

	f.Flush(a, kcp.IKCP_FLUSH_FULL)
	require.Len(t, ra.pkts, 1, "both segments in one packet")
	require.Equal(t, kcp.RINGBUFFER_MIN, inspect(t, a).Rings[2], "snd_buf grew for two segments in flight")
	f.Trim(a)
	require.Equal(t, kcp.RINGBUFFER_MIN, inspect(t, a).Rings[2], "not quiet: Trim leaves it")

	for _, p := range ra.take() {
		require.Zero(t, b.Input(p, kcp.IKCP_PACKET_REGULAR, true))
	}
	rcvNxt, end, held, ok := f.RecvState(b)
	require.True(t, ok)
	require.Equal(t, uint32(2), rcvNxt)
	require.Equal(t, 2, held)
	require.Equal(t, uint32(2+300-2), end, "rcv_nxt + window less the queued segments")
	f.Flush(b, kcp.IKCP_FLUSH_ACKONLY)
	for _, p := range rb.take() {
		require.Zero(t, a.Input(p, kcp.IKCP_PACKET_REGULAR, true))
	}
	require.True(t, f.Quiet(a))
	require.True(t, f.Grown(a))
	f.Trim(a)
	require.Equal(t, [3]int{RingEntries, RingEntries, RingEntries}, inspect(t, a).Rings)
	require.False(t, f.Grown(a))

	// The trimmed KCP still works.
	require.Zero(t, a.Send([]byte("three")))
	f.Flush(a, kcp.IKCP_FLUSH_FULL)
	require.Len(t, ra.pkts, 1)
}

// TestOutputDoesNotOutliveCallback (race builds): a KCP from New gets its
// output bytes overwritten with Poison when the callback returns, so a
// caller that keeps them sends garbage the session tests catch.
func TestOutputDoesNotOutliveCallback(t *testing.T) {
	if !raceEnabled {
		t.Skip("race builds only")
	}
	f := NewFactory(Options{Tune: nodelay})
	var kept, copied []byte
	k := f.New(1, func(b []byte, n int) { kept, copied = b[:n], bytes.Clone(b[:n]) }, 0)
	require.Zero(t, k.Send([]byte("secret")))
	f.Flush(k, kcp.IKCP_FLUSH_FULL)
	require.NotEmpty(t, kept)
	require.Contains(t, string(copied), "secret", "the callback saw the data")
	require.Equal(t, bytes.Repeat([]byte{Poison}, len(kept)), kept, "poisoned once the callback returned")
}

// TestMinRTO: MinRTO reads the floor NoDelay set (30 ms in no-delay
// mode), and SetMinRTO's floor is the timeout a segment sent after it
// gets: SendWork's resend time is at least the floor ahead.
func TestMinRTO(t *testing.T) {
	f := NewFactory(Options{Tune: nodelay})
	var r recorder
	k := f.New(1, r.out, 0)
	ms, ok := f.MinRTO(k)
	require.True(t, ok)
	require.EqualValues(t, kcp.IKCP_RTO_NDL, ms)
	f.SetMinRTO(k, 250)
	ms, _ = f.MinRTO(k)
	require.EqualValues(t, 250, ms)
	require.Zero(t, k.Send([]byte("x")))
	now := Now()
	f.Flush(k, kcp.IKCP_FLUSH_FULL)
	require.Len(t, r.take(), 1)
	at, has, _ := f.SendWork(k)
	require.True(t, has)
	require.GreaterOrEqual(t, int32(at-now), int32(250), "the segment's timeout is the floor")
	f.SetMinRTO(k, kcp.IKCP_RTO_NDL)
	ms, _ = f.MinRTO(k)
	require.EqualValues(t, kcp.IKCP_RTO_NDL, ms)
}
