package wire_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/kcpx"
	"github.com/uxp-go/uxp/internal/wire"
)

// expandBoth expands frame with Expand and with ExpandInPlace and checks
// they agree.
func expandBoth(t testing.TB, frame []byte, ref wire.Refs) ([]byte, bool) {
	t.Helper()
	segs, ok := wire.Expand(nil, frame, ref)
	buf := make([]byte, 24+len(frame))
	off := len(buf) - len(frame)
	copy(buf[off:], frame)
	in, ok2, fit := wire.ExpandInPlace(buf, off, ref)
	if !fit {
		// Several records, or a malformed one: refused, buf untouched.
		require.True(t, bytes.Equal(frame, buf[off:]), "ExpandInPlace wrote though it refused")
		return segs, ok
	}
	require.True(t, ok && ok2, "ExpandInPlace took a frame Expand refuses")
	require.True(t, bytes.Equal(segs, in), "Expand and ExpandInPlace differ")
	// Too little room: refused, buffer untouched.
	if grow := len(segs) - len(frame); grow > 0 {
		small := append(make([]byte, grow-1), frame...)
		_, _, fit := wire.ExpandInPlace(small, grow-1, ref)
		require.False(t, fit)
		require.True(t, bytes.Equal(frame, small[grow-1:]))
	}
	return segs, ok
}

// kcpPair runs two kcp-go KCPs, recording what each outputs.
type kcpPair struct {
	f          *kcpx.Factory
	a, b       *kcp.KCP
	outA, outB [][]byte
}

func newKCPPair(conv uint32, mtu int) *kcpPair {
	p := &kcpPair{}
	p.f = kcpx.NewFactory(kcpx.Options{Tune: func(k *kcp.KCP) {
		k.NoDelay(1, 10, 2, 1)
		k.WndSize(1024, 1024)
	}})
	p.a = p.f.New(conv, func(b []byte, n int) { p.outA = append(p.outA, bytes.Clone(b[:n])) }, mtu)
	p.b = p.f.New(conv, func(b []byte, n int) { p.outB = append(p.outB, bytes.Clone(b[:n])) }, mtu)
	return p
}

// TestRecordKCPOutput: the frames kcp-go really produces (data of every
// size, fragments, several segments per frame, ACK runs, window probes)
// compact (leaving U out where the sender's Sticky allows) and expand
// back byte for byte, against the receiving KCP's state and clock (a
// PUSH's ts to its 16 bits), and the receiving KCP delivers the messages.
func TestRecordKCPOutput(t *testing.T) {
	const conv = 0x5eed
	p := newKCPPair(conv, 1400)
	var sndUnaA, sndUnaB uint32 // what each side knows of its peer's una
	var rcvA, rcvB uint32       // the next sn each side expects
	wndA, wndB := uint16(kcp.IKCP_WND_RCV), uint16(kcp.IKCP_WND_RCV)
	var stA, stB wire.Sticky // what each side's peer holds of its una and wnd
	frames, withoutU := 0, 0
	relay := func(pkts [][]byte, to *kcp.KCP, st *wire.Sticky, rcvNxt, sndUna *uint32, wnd *uint16) {
		for _, seg := range pkts {
			n, ok := wire.CompactSize(seg)
			require.True(t, ok)
			frame, size, ok := wire.CompactFit(bytes.Clone(seg), n, st)
			require.True(t, ok)
			require.LessOrEqual(t, size, n)
			require.Less(t, len(frame), len(seg)-wire.RecordSaving+1)
			if frame[0]&wire.RecordFlagU == 0 {
				withoutU++
			}
			got, ok := expandBoth(t, bytes.Clone(frame), wire.Refs{Conv: conv, RcvNxt: *rcvNxt, SndUna: *sndUna, Wnd: *wnd, Now: kcpx.Ms(time.Now())})
			require.True(t, ok)
			// A PUSH's ts arrives as its 16 bits; an ACK's exactly.
			want := bytes.Clone(seg)
			for q := want; len(q) > 0; {
				s, rest, _ := wire.NextSegment(q)
				if s.Cmd() != wire.CmdAck {
					s.SetTs(uint32(uint16(s.Ts())))
				}
				q = rest
			}
			require.Equal(t, want, got)
			require.Zero(t, to.Input(got, kcp.IKCP_PACKET_REGULAR, false))
			frames++
			for q := got; len(q) > 0; {
				s, rest, _ := wire.NextSegment(q)
				if int32(s.Una()-*sndUna) > 0 {
					*sndUna = s.Una()
				}
				*wnd = s.Wnd()
				if s.Cmd() == wire.CmdPush && s.Sn() == *rcvNxt {
					*rcvNxt = s.Sn() + 1 // in order here: no loss
				}
				q = rest
			}
		}
	}
	var sent [][]byte
	for i := range 200 {
		msg := bytes.Repeat([]byte{byte(i)}, 1+i*37%5000)
		sent = append(sent, msg)
		require.Zero(t, p.a.Send(msg))
		if i%7 == 0 {
			require.Zero(t, p.b.Send([]byte{byte(i)}))
		}
		p.f.Flush(p.a, kcp.IKCP_FLUSH_FULL)
		p.f.Flush(p.b, kcp.IKCP_FLUSH_FULL)
		a, b := p.outA, p.outB
		p.outA, p.outB = nil, nil
		relay(a, p.b, &stA, &rcvB, &sndUnaB, &wndB)
		relay(b, p.a, &stB, &rcvA, &sndUnaA, &wndA)
		p.f.Flush(p.b, kcp.IKCP_FLUSH_FULL) // the ACKs
		b = p.outB
		p.outB = nil
		relay(b, p.a, &stB, &rcvA, &sndUnaA, &wndA)
	}
	buf := make([]byte, 1<<16)
	for _, want := range sent {
		n := p.b.Recv(buf)
		require.Equal(t, want, buf[:n])
	}
	require.Greater(t, frames, 400)
	require.Greater(t, withoutU, 100, "frames of data alone leave una and wnd out")
	t.Logf("%d frames, %d without U", frames, withoutU)
}
