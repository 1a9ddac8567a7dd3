package arq

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/wire"
)

// fuzzSeg is one KCP segment for the fuzz seeds.
func fuzzSeg(cmd, frg byte, sn, una uint32, data []byte) []byte {
	var h [wire.SegmentHeaderSize]byte
	seg := wire.Segment(h[:])
	seg.SetConv(7)
	seg.SetCmd(cmd)
	seg.SetFrg(frg)
	seg.SetWnd(testWindow)
	seg.SetSn(sn)
	seg.SetUna(una)
	seg.SetLen(uint32(len(data)))
	return append(h[:], data...)
}

// fuzzFrames encodes frames for FuzzInput: lane byte, length byte, body.
func fuzzFrames(frames ...[]byte) []byte {
	var b []byte
	for i, f := range frames {
		b = append(b, byte(i), byte(len(f)))
		b = append(b, f...)
	}
	return b
}

// FuzzInput feeds arbitrary frames to a session's two lanes, as a peer
// could: nothing panics, a malformed frame is counted and the next still
// taken, and the data segments the lanes store stay within the receive
// budget (plus the one segment each lane expects next). The lanes also
// send, so that ACKs meet a real send buffer.
func FuzzInput(f *testing.F) {
	plain := append([]byte{wire.LaneMsgPlain}, "hello"...)
	f.Add(fuzzFrames(fuzzSeg(wire.CmdPush, 0, 0, 0, plain)))
	f.Add(fuzzFrames(fuzzSeg(wire.CmdPush, 1, 1, 0, plain), fuzzSeg(wire.CmdPush, 0, 0, 0, plain)))
	f.Add(fuzzFrames(fuzzSeg(wire.CmdAck, 0, 0, 1, nil), fuzzSeg(wire.CmdWask, 0, 0, 0, nil)))
	f.Add(fuzzFrames(fuzzSeg(wire.CmdPush, 0, 0, 0, []byte{wire.LaneMsgSkip})))
	f.Add(fuzzFrames(fuzzSeg(wire.CmdPush, 0, 0, 0, []byte{wire.LaneMsgDeadline, 0x80})))
	f.Add(fuzzFrames(fuzzSeg(wire.CmdPush, 0, 0, 0, nil), fuzzSeg(wire.CmdPush, 0, 200, 0, plain)))
	f.Add([]byte{0, 3, 1, 2, 3, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := testConfig(2)
		e := newEnd(t, cfg, time.Now())
		now := time.Now()
		for lane := range 2 {
			e.write(now, lane, msg(lane, 0, 3000), time.Time{})
		}
		e.take()
		for p := data; len(p) >= 2; {
			lane, n := int(p[0]%2), int(p[1])
			p = p[2:]
			n = min(n, len(p))
			body := p[:n]
			p = p[n:]
			e.ls.Input(now, lane, body, kcp.IKCP_PACKET_REGULAR)
			_ = e.ls.DeliverLane(now, lane) // a protocol error ends the session; keep fuzzing
			e.ls.Flush(now)
			e.ls.Timers(now, NoLimit)
			e.take()
			require.LessOrEqual(t, e.ls.RecvHeld(), cfg.RecvBudget+e.ls.Len())
			require.GreaterOrEqual(t, e.ls.Stats(lane).QueuedBytes, 0)
		}
		e.ls.Deadline(now)
	})
}
