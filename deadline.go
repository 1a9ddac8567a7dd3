package uxp

import (
	"time"
)

// Deadlines. A reliable message may carry a time limit. The sender tracks
// every message it has not seen acknowledged. When one of them can no
// longer arrive in time (its deadline, less half the smoothed RTT and one
// RTT variation, has passed), the sender abandons it: it stops sending the
// lane's current KCP conversation altogether and starts a new one (the next
// epoch, a new conversation number), into which it puts again, in order,
// every unacknowledged message that has not expired. The receiver follows
// the first PUSH of a newer epoch, drops its old conversation, and numbers
// the new messages by their lane message header (lane_arq.go): messages it
// already delivered are not delivered again, and the ordinals that never
// arrive are counted as skipped. A message still waiting for the window
// when it expires is dropped before it is ever sent.
//
// Why a reset instead of removing one message from KCP: kcp-go gives no
// access to its send buffer or its receiver's next expected sequence
// number, and both ends would have to agree on the hole. A new conversation
// needs only the public KCP API and one uvarint per message.
//
// Cost: a reset sends again what was unacknowledged on that lane, so it is
// meant for lanes whose messages are small and frequent (frames, game
// state), not for bulk transfers with long deadlines.

// WriteWithDeadline queues msg on lane 0 like Write, with a time limit d
// from now. If the peer has not received it by then (as far as this side
// can tell from the RTT), it is abandoned: it is not sent again, and the
// peer skips it without holding back later messages. d must be positive;
// otherwise WriteWithDeadline returns ErrBadDeadline.
func (c *Conn) WriteWithDeadline(msg []byte, d time.Duration) (int, error) {
	return c.WriteLaneWithDeadline(0, msg, d)
}

// WriteLaneWithDeadline is WriteWithDeadline on the given lane; the
// deadline d replaces the lane's default.
func (c *Conn) WriteLaneWithDeadline(lane int, msg []byte, d time.Duration) (int, error) {
	if lane < 0 || lane >= len(c.ep.set.lanes) {
		return 0, ErrNoSuchLane
	}
	if d <= 0 {
		return 0, ErrBadDeadline
	}
	return c.write(pendReliable, lane, time.Now().Add(d).UnixNano(), msg)
}

// expiryMargin is how long before its deadline a message is abandoned: a
// copy sent later would arrive too late. Half the smoothed RTT is the
// one-way delay; the RTT variation covers jitter.
func (c *Conn) expiryMargin() time.Duration { return c.hb.srtt/2 + c.hb.rttvar }

// expireLanes abandons every message whose deadline can no longer be met.
func (c *Conn) expireLanes(now time.Time) {
	cut := now.Add(c.expiryMargin()).UnixNano()
	for _, l := range c.lanes {
		if l.minExpiry == 0 || l.minExpiry > cut {
			continue
		}
		expired := func(m *laneMsg) bool { return m.expiry != 0 && m.expiry <= cut }
		kept := l.backlog[:0]
		for i := range l.backlog {
			if m := &l.backlog[i]; expired(m) {
				c.abandon(l, m)
			} else {
				kept = append(kept, *m)
			}
		}
		clear(l.backlog[len(kept):])
		l.backlog = kept
		reset := false
		for i := range l.inflight {
			if expired(&l.inflight[i]) {
				reset = true
				break
			}
		}
		if reset {
			c.resetLane(l, expired)
		}
		l.recomputeExpiry()
	}
}

func (c *Conn) abandon(l *lane, m *laneMsg) {
	l.queued -= len(m.data)
	l.ctr.expired.Add(1)
}

// resetLane starts the lane's next sending epoch: the unacknowledged
// messages that have not expired go back to the front of the backlog, the
// others are abandoned, and a fresh KCP conversation takes over.
func (c *Conn) resetLane(l *lane, expired func(*laneMsg) bool) {
	again := make([]laneMsg, 0, len(l.inflight)+len(l.backlog))
	for i := range l.inflight {
		if m := &l.inflight[i]; expired(m) {
			c.abandon(l, m)
		} else {
			again = append(again, *m)
		}
	}
	l.backlog = append(again, l.backlog...)
	l.inflight = nil
	l.sndEpoch++
	l.snd = c.newLaneKCP(c.id^l.sndEpoch, c.laneSendOutput(l))
	l.sndFirst = true
	l.sndSN, l.sndUna = 0, 0
	l.maxSentSN, l.sentData = 0, false
}

// recomputeExpiry finds the lane's earliest expiry again.
func (l *lane) recomputeExpiry() {
	var min int64
	for _, q := range [][]laneMsg{l.backlog, l.inflight} {
		for i := range q {
			if e := q[i].expiry; e != 0 && (min == 0 || e < min) {
				min = e
			}
		}
	}
	l.minExpiry = min
}
