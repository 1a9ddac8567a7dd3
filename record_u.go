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
//   - renewAfter passed since the last frame that had it: a quarter of
//     the smoothed RTT, at least renewMin; or no RTT is known yet
//     (renewal).
//
// So an update lost with its frame is repaired within a quarter RTT (1 ms
// on a path shorter than 4 ms): sooner than any retransmission timeout the
// peer runs on it, whose floor is tens of milliseconds. In a one-way flow
// the sender's una and wnd (its receive state) do not change, and every
// full-size data packet but the first of each renewal period saves 4
// bytes.
//
// Renewal goes by time only, not by a count of frames: a renewed frame is
// 4 bytes longer than the frames around it, and the socket sends a run of
// datagrams to one address as one UDP GSO message only while they have
// one size (the last may be shorter; sendbatch.go). Renewing every eighth
// frame cut a loopback bulk flow's GSO runs from up to 64 datagrams to 2
// and 7, and its goodput by 0.6× (bench bulk, session 11).

/* Implementation constants */
const (
	// renewMin is the shortest renewal period: on a loopback or LAN path
	// a quarter RTT is tens of microseconds, shorter than one shard event,
	// and would put U in the first frame of nearly every send batch.
	renewMin = time.Millisecond
)

// laneRecordU is one lane's send-side state for leaving U out. Owned by
// the shard.
type laneRecordU struct {
	st wire.Sticky
	at time.Time // when the last frame whose first record had U was sent
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
	u.st.Renew = srtt == 0 || c.shard.now.Sub(u.at) >= max(srtt/4, renewMin)
	return u
}

// sent notes that frame, a record frame, was sent at now.
func (u *laneRecordU) sent(frame []byte, now time.Time) {
	if frame[0]&wire.RecordFlagU != 0 {
		u.at = now
	}
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
