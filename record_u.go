package uxp

import (
	"bytes"
	"time"

	"github.com/uxp-go/uxp/internal/wire"
)

// Leaving una and wnd out of a frame's first record (docs/protocol.md
// section 3.5; docs/architecture.md, "Compact records"). A frame whose
// first record has no U tells the peer "una and wnd as before": the
// values of the last record this lane sent. The frame that changed them
// may have been lost or overtaken, so the peer may hold older values
// until the next frame with U; this side bounds that time. The first
// record carries U when:
//
//   - una or wnd differs from the last record the lane sent;
//   - the frame carries an ACK, WASK or WINS record (wire.CompactFit):
//     ACK frames report the receive state, and a window answer must state
//     its window;
//   - renewFrames−1 frames in a row went without it, or a quarter of the
//     smoothed RTT passed since the last that had it, or no RTT is known
//     yet (renewal).
//
// So an update lost with its frame is repaired within renewFrames frames
// or a quarter RTT, whichever comes first: sooner than any retransmission
// timeout the peer runs on it. In a one-way flow the sender's una and wnd
// (its receive state) do not change, and every full-size data packet but
// one in eight saves 4 bytes.

/* Implementation constants */
const (
	// renewFrames: at least every renewFrames-th frame of a lane carries
	// U. Eight packets of a bulk flow are about a tenth of its window at
	// the defaults, and cost 4 bytes once (0.03 % of eight 1,472-byte
	// packets).
	renewFrames = 8
)

// laneRecordU is one lane's send-side state for leaving U out. Owned by
// the shard.
type laneRecordU struct {
	st    wire.Sticky
	since int       // frames sent since the last whose first record had U
	at    time.Time // when that frame was sent
}

// recordU returns lane's state, with st.Renew set for the next frame.
func (c *Conn) recordU(lane int) *laneRecordU {
	u := &c.recU[lane]
	srtt := c.dataRTT.srtt
	if c.dataRTT.samples == 0 {
		srtt = c.hb.srtt
		if c.hb.samples == 0 {
			srtt = 0
		}
	}
	u.st.Renew = srtt == 0 || u.since >= renewFrames-1 || c.shard.now.Sub(u.at) >= srtt/4
	return u
}

// sent notes that frame, a record frame, was sent at now.
func (u *laneRecordU) sent(frame []byte, now time.Time) {
	if frame[0]&wire.RecordFlagU != 0 {
		u.since, u.at = 0, now
		return
	}
	u.since++
}

// dropKCP is emitKCP for a frame a test hook drops on the way: the
// lane's state moves as if it was sent. It returns the frame's size.
func (c *Conn) dropKCP(lane int, segs []byte) int {
	u := c.recordU(lane)
	frame, size, ok := wire.CompactFit(bytes.Clone(segs), 1<<16, &u.st)
	if ok && frame != nil {
		u.sent(frame, c.shard.now)
	}
	return size
}
