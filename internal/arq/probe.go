package arq

import (
	"time"

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
// for one PTO (Timing.PTO: srtt + max(4·rttvar, a granularity), from the
// caller) since data was last sent, the lane sends the tail again, with
// its current una, window and timestamp, and doubles the PTO for the next
// probe; after MaxTailProbes probes without progress, KCP's own timeout
// and backoff take over. The receiver's KCP sees an ordinary (possibly
// duplicate) segment: it fills the hole if the tail was lost, and is
// acknowledged again if an ACK was lost, which in turn lets KCP's fast
// retransmission repair an earlier hole. Nothing on the wire is new.
//
// The data RTT samples (Ack.RTT) are the time from sending a tail until
// its acknowledgement. A KCP ACK echoes the timestamp of the copy it
// acknowledges, and a probe carries a later timestamp than the original
// (a PTO is at least 2 ms; KCP stamps milliseconds), so the ACK says which
// copy arrived and the sample is exact even for a probed tail. (Skipping
// probed tails, as Karn's rule would, can leave an underestimated PTO
// probing every tail spuriously, never learning better.) A tail KCP
// retransmitted itself, or acknowledged only through a una, gives a
// sample only if it was sent once. Without a PTO the lane does not probe.

/* Implementation constants */
const (
	// MaxTailProbes is how many probes a lane sends without an
	// acknowledgement advancing; KCP's retransmission timeout goes on
	// after that.
	MaxTailProbes = 2

	// probeBufSize is the size of a tail copy: the largest datagram, so
	// the largest KCP segment, the root allows.
	probeBufSize = 1500

	// probeBufsKept bounds the shard's free list of tail copies.
	probeBufsKept = 256
)

// tailProbe is a lane's probe state.
type tailProbe struct {
	buf    *[probeBufSize]byte // copy of the tail segment; nil when nothing is unacknowledged
	n      int                 // its length
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

// getBuf takes a tail copy from the shard's free list.
func (sh *Shard) getBuf() *[probeBufSize]byte {
	if n := len(sh.bufs); n > 0 {
		b := sh.bufs[n-1]
		sh.bufs[n-1] = nil
		sh.bufs = sh.bufs[:n-1]
		return b
	}
	return new([probeBufSize]byte)
}

// putBuf gives a tail copy back; beyond probeBufsKept the GC takes it.
func (sh *Shard) putBuf(b *[probeBufSize]byte) {
	if len(sh.bufs) < probeBufsKept {
		sh.bufs = append(sh.bufs, b)
	}
}

// noteDataSent records a data segment the lane's KCP sends: fresh is set
// for new data (the highest sn so far), which becomes the tail when it is
// the newest segment the lane gave KCP (sn sndSN-1), or when there is no
// tail yet. A flush of a bulk sender sends a run of fresh segments that
// ends with that one: copying each of them in turn, only for the next to
// replace it, cost a copy of every byte sent. While KCP's window holds the
// newest segments back, the tail stays an earlier one still in flight,
// which a probe may resend as well.
func (ls *Lanes) noteDataSent(l *lane, seg wire.Segment, sn uint32, fresh bool) {
	p := &l.probe
	switch {
	case fresh && len(seg) <= probeBufSize && (p.buf == nil || sn == l.sndSN-1):
		if p.buf == nil {
			p.buf = ls.sh.getBuf()
		}
		p.n = copy(p.buf[:], seg)
		p.sn, p.sentAt = sn, ls.now
		p.ts = seg.Ts()
		p.resent, p.sampled, p.probeTS = false, false, 0
	case p.buf != nil && sn == p.sn:
		p.resent = true // KCP retransmitted the tail itself
	}
}

// armProbe restarts the lane's probe timer after it sent data.
func (ls *Lanes) armProbe(l *lane, now time.Time) {
	if l.probe.buf == nil {
		return
	}
	if t := ls.out.Timing(); t.PTO > 0 {
		pto := t.PTO
		if l.probe.n >= ls.mtu {
			pto += t.AckDelay // the peer may hold a full-size segment's ACK
		}
		l.probe.at = now.Add(pto << l.probe.count)
	}
}

// probeAcked updates the probe state after una advanced, and returns the
// RTT sample if the tail was acknowledged: the timer is restarted or
// stopped.
func (ls *Lanes) probeAcked(l *lane, una uint32, now time.Time) (rtt time.Duration) {
	p := &l.probe
	if p.buf == nil {
		return 0
	}
	p.count = 0
	if int32(una-p.sn) <= 0 {
		ls.armProbe(l, now) // progress, but the tail is still out
		return 0
	}
	if !p.sampled && !p.resent && p.probeTS == 0 {
		rtt = max(now.Sub(p.sentAt), 1) // zero means no sample
	}
	ls.releaseProbe(l)
	return rtt
}

// probeACK returns the RTT sample an ACK segment for the lane's tail
// gives (zero: none): ts says which copy it acknowledges.
func (ls *Lanes) probeACK(l *lane, sn, ts uint32, now time.Time) (rtt time.Duration) {
	p := &l.probe
	if p.buf == nil || sn != p.sn || p.sampled || p.resent {
		return 0
	}
	switch {
	case ts == p.ts && p.ts != p.probeTS:
		rtt = now.Sub(p.sentAt)
	case ts == p.probeTS && p.ts != p.probeTS:
		rtt = now.Sub(p.probeSentAt)
	default:
		return 0
	}
	p.sampled = true
	// A zero sample (same instant under a fake clock) still counts:
	// report the smallest positive one.
	return max(rtt, 1)
}

// releaseProbe forgets the tail: everything sent was acknowledged, or the
// session ended.
func (ls *Lanes) releaseProbe(l *lane) {
	p := &l.probe
	if p.buf != nil {
		ls.sh.putBuf(p.buf)
	}
	*p = tailProbe{}
}

// probeTimer sends the lane's probe when it is due.
func (ls *Lanes) probeTimer(l *lane, now time.Time) {
	p := &l.probe
	if p.at.IsZero() || now.Before(p.at) {
		return
	}
	p.at = time.Time{}
	if p.buf == nil || p.count >= MaxTailProbes || int32(p.sn-l.sndUna) < 0 {
		return
	}
	seg := wire.Segment(p.buf[:p.n])
	// The receive state and timestamp of now, as KCP's own retransmission
	// would carry.
	seg.SetWnd(l.outWnd)
	p.probeTS, p.probeSentAt = ls.kcpMs(), now
	seg.SetTs(p.probeTS)
	seg.SetUna(l.outUna)
	if m := l.lapsedAt(p.sn); m != nil {
		seg = skipSegment(seg, p.sn == m.firstSN)
		p.n = len(seg)
	}
	p.count++
	l.ctr.Retrans.Add(1)
	ls.packetFirst = true
	ls.trackSent(l, p.sn, p.probeTS, len(seg), false, true, false)
	ls.emitCopy(l, seg, Sent{Data: true, Bytes: len(seg), Retrans: 1, RetransBytes: len(seg), Probe: true}) // the tail is kept for the next probe
	ls.armProbe(l, now)
}
