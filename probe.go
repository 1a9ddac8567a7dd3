package uxp

import (
	"time"

	"github.com/uxp-go/uxp/internal/kcpx"
	"github.com/uxp-go/uxp/internal/wire"
)

// Tail-loss probes (after RFC 9002's probe timeout, PTO).
//
// KCP recovers a lost segment by fast retransmission once later segments
// are acknowledged past it, or by its retransmission timeout otherwise. The
// second case is the common one for the traffic uxp is for: a request, a
// game tick or a chat line is one segment with nothing behind it, and KCP's
// timeout is at least 30 ms (no-delay mode) plus its 10 ms interval tick,
// whatever the path's RTT. On a 1 ms path that timeout is the whole tail of
// the latency distribution.
//
// So each lane keeps a copy of the newest data segment it sent (the tail)
// while any data is unacknowledged. When no acknowledgement has advanced
// for one PTO = srtt + max(4·rttvar, probeGranularity) since data was last
// sent, the lane sends the tail again, with its current una, window and
// timestamp, and doubles the PTO for the next probe; after maxTailProbes
// probes without progress, KCP's own timeout and backoff take over. The
// receiver's KCP sees an ordinary (possibly duplicate) segment: it fills
// the hole if the tail was lost, and is acknowledged again if an ACK was
// lost, which in turn lets KCP's fast retransmission repair an earlier
// hole. Nothing on the wire is new.
//
// srtt and rttvar come from the session's data round trips: the time from
// sending a tail until its acknowledgement. A KCP ACK echoes the timestamp
// of the copy it acknowledges, and a probe carries a later timestamp than
// the original (a PTO is at least 2 ms; KCP stamps milliseconds), so the
// ACK says which copy arrived and the sample is exact even for a probed
// tail. (Skipping probed tails, as Karn's rule would, can leave an
// underestimated PTO probing every tail spuriously, never learning
// better.) A tail KCP retransmitted itself, or acknowledged only through a
// una, gives a sample only if it was sent once. Until the first data
// sample, the heartbeat's estimate is used; with neither, the lane does not
// probe.

/* Implementation constants */
const (
	// probeGranularity is the smallest variance term of the PTO: timer
	// and scheduling jitter on a busy host, where the measured rttvar of
	// a sub-millisecond path would be too small.
	probeGranularity = 2 * time.Millisecond
	// maxTailProbes is how many probes a lane sends without an
	// acknowledgement advancing; KCP's retransmission timeout goes on
	// after that.
	maxTailProbes = 2
)

// tailProbe is a lane's probe state, owned by the shard.
type tailProbe struct {
	buf    *packetBuf // copy of the tail segment; nil when nothing is unacknowledged
	n      int        // its length
	sn     uint32
	ts     uint32 // KCP timestamp of the original
	sentAt time.Time
	// The latest probe's timestamp and send time.
	probeTS     uint32
	probeSentAt time.Time
	resent      bool      // KCP retransmitted it: ambiguous
	sampled     bool      // its RTT sample was taken
	at          time.Time // when to probe; zero when not armed
	count       int       // probes sent since una last advanced
}

// pto is the session's probe timeout, or zero when no RTT is known yet.
func (c *Conn) pto() time.Duration {
	e := &c.dataRTT
	if e.samples == 0 {
		e = &c.hb.rttEstimator
	}
	if e.samples == 0 {
		return 0
	}
	return e.srtt + max(4*e.rttvar, probeGranularity)
}

// noteDataSent records a data segment the lane's KCP sends: fresh is set
// for new data (the highest sn so far), which becomes the tail.
func (c *Conn) noteDataSent(l *lane, seg wire.Segment, sn uint32, fresh bool, now time.Time) {
	p := &l.probe
	switch {
	case fresh:
		if p.buf == nil {
			p.buf = getPacketBuf()
		}
		p.n = copy(p.buf[:], seg)
		p.sn, p.sentAt = sn, now
		p.ts = seg.Ts()
		p.resent, p.sampled, p.probeTS = false, false, 0
	case p.buf != nil && sn == p.sn:
		p.resent = true // KCP retransmitted the tail itself
	}
}

// armProbe restarts the lane's probe timer after it sent data.
func (c *Conn) armProbe(l *lane, now time.Time) {
	if l.probe.buf == nil {
		return
	}
	if pto := c.pto(); pto > 0 {
		l.probe.at = now.Add(pto << l.probe.count)
	}
}

// probeAcked updates the probe state after una advanced: an RTT sample if
// the tail was acknowledged, and the timer restarted or stopped.
func (c *Conn) probeAcked(l *lane, una uint32, now time.Time) {
	p := &l.probe
	if p.buf == nil {
		return
	}
	p.count = 0
	if int32(una-p.sn) <= 0 {
		c.armProbe(l, now) // progress, but the tail is still out
		return
	}
	if !p.sampled && !p.resent && p.probeTS == 0 {
		c.dataRTT.sample(now.Sub(p.sentAt))
	}
	c.releaseProbe(l)
}

// probeACK takes the RTT sample an ACK segment for the lane's tail gives:
// ts says which copy it acknowledges.
func (c *Conn) probeACK(l *lane, sn, ts uint32, now time.Time) {
	p := &l.probe
	if p.buf == nil || sn != p.sn || p.sampled || p.resent {
		return
	}
	switch {
	case ts == p.ts && p.ts != p.probeTS:
		c.dataRTT.sample(now.Sub(p.sentAt))
	case ts == p.probeTS && p.ts != p.probeTS:
		c.dataRTT.sample(now.Sub(p.probeSentAt))
	default:
		return
	}
	p.sampled = true
}

// releaseProbe forgets the tail: everything sent was acknowledged, or the
// session ended.
func (c *Conn) releaseProbe(l *lane) {
	p := &l.probe
	if p.buf != nil {
		putPacketBuf(p.buf)
	}
	*p = tailProbe{}
}

// probeTimer sends the lane's probe when it is due.
func (c *Conn) probeTimer(l *lane, now time.Time) {
	p := &l.probe
	if p.at.IsZero() || now.Before(p.at) {
		return
	}
	p.at = time.Time{}
	if p.buf == nil || p.count >= maxTailProbes || int32(p.sn-l.sndUna) < 0 {
		return
	}
	seg := wire.Segment(p.buf[:p.n])
	// The receive state and timestamp of now, as KCP's own retransmission
	// would carry.
	seg.SetWnd(l.outWnd)
	p.probeTS, p.probeSentAt = kcpx.Now(), now
	seg.SetTs(p.probeTS)
	seg.SetUna(l.outUna)
	if m := c.laneLapsed(l, p.sn); m != nil {
		seg = skipSegment(seg, p.sn == m.firstSN)
		p.n = len(seg)
	}
	p.count++
	l.ctr.retrans.Add(1)
	c.traffic.retrans.Add(1)
	c.traffic.probes.Add(1)
	c.shard.traffic.retrans.Add(1)
	c.shard.traffic.probes.Add(1)
	c.laneOutput(l, seg, true)
	c.armProbe(l, now)
}
