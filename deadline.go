package uxp

import (
	"slices"
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
func (c *Conn) expiryMargin() time.Duration { return c.hb.srtt/2 + c.hb.rttvar/2 }

// expireLanes handles the messages whose deadline can no longer be met. A
// message still in the backlog is dropped. A message in KCP lapses: its
// segments are kept off the wire from now on (laneSendOutput). Whether the
// peer got it is not known yet, so the lane is reset only when there is
// evidence that it did not: KCP wanted to send it again (RTO or fast
// resend), or the peer acknowledged a later segment while it remains
// unacknowledged. Resetting at once instead would force every message sent
// again by the previous reset to be confirmed within its own (shorter)
// remaining life, and the resets would cascade.
func (c *Conn) expireLanes(now time.Time) {
	cut := now.Add(c.expiryMargin()).UnixNano()
	for _, l := range c.lanes {
		if l.minExpiry != 0 && l.minExpiry <= cut {
			kept := l.backlog[:0]
			for i := range l.backlog {
				if m := &l.backlog[i]; m.expiry != 0 && m.expiry <= cut {
					c.abandon(l, m)
				} else {
					kept = append(kept, *m)
				}
			}
			clear(l.backlog[len(kept):])
			l.backlog = kept
			for i := range l.inflight {
				if m := &l.inflight[i]; !m.lapsed && m.expiry != 0 && m.expiry <= cut {
					m.lapsed = true
					dbg("lapse %d margin %v srtt %v var %v", m.ord, c.expiryMargin(), c.hb.srtt, c.hb.rttvar)
					l.lapsed++
				}
			}
			l.recomputeExpiry()
		}
		if l.lapsed > 0 && (l.needReset || c.laneLapsedLost(l)) {
			c.resetLane(l)
		}
	}
}

// laneLapsedLost reports whether the peer acknowledged a segment after a
// lapsed message, which it has not acknowledged.
func (c *Conn) laneLapsedLost(l *lane) bool {
	if !l.ackSeen {
		return false
	}
	for i := range l.inflight {
		if m := &l.inflight[i]; m.lapsed && int32(l.maxAckSN-m.lastSN) > 0 {
			return true
		}
	}
	return false
}

// laneLapsedSN reports whether sn belongs to a lapsed message, or to one
// that expired since the last expireLanes.
func (c *Conn) laneLapsedSN(l *lane, sn uint32) bool {
	if l.lapsed == 0 && l.minExpiry == 0 {
		return false
	}
	i, _ := slices.BinarySearchFunc(l.inflight, sn, func(m laneMsg, sn uint32) int {
		return int(int32(m.lastSN - sn))
	})
	if i == len(l.inflight) {
		return false
	}
	m := &l.inflight[i]
	if m.lapsed {
		return true
	}
	return m.expiry != 0 && m.expiry <= c.shard.now.Add(c.expiryMargin()).UnixNano()
}

func (c *Conn) abandon(l *lane, m *laneMsg) {
	l.queued -= len(m.data)
	if !m.delivered {
		l.ctr.expired.Add(1)
	}
}

// resetLane starts the lane's next sending epoch: the unacknowledged
// messages that have not lapsed go back to the front of the backlog, the
// lapsed ones are abandoned, and a fresh KCP conversation takes over.
func (c *Conn) resetLane(l *lane) {
	dbg("reset lane %d epoch %d needReset %v lapsed %d inflight %d una %d maxack %d", l.id, l.sndEpoch, l.needReset, l.lapsed, len(l.inflight), l.sndUna, l.maxAckSN)
	again := make([]laneMsg, 0, len(l.inflight)+len(l.backlog))
	for i := range l.inflight {
		if m := &l.inflight[i]; m.lapsed {
			c.abandon(l, m)
		} else {
			again = append(again, *m)
		}
	}
	l.backlog = append(again, l.backlog...)
	l.prevEpoch = l.sndEpoch
	l.prevInflight = l.prevInflight[:0]
	for _, m := range l.inflight {
		l.prevInflight = append(l.prevInflight, laneMsg{ord: m.ord, lastSN: m.lastSN})
	}
	l.inflight = nil
	l.sndEpoch++
	l.snd = c.newLaneKCP(c.id^l.sndEpoch, c.laneSendOutput(l))
	l.sndFirst = true
	l.sndSN, l.sndUna = 0, 0
	l.maxSentSN, l.sentData = 0, false
	l.lapsed, l.needReset = 0, false
	l.ackSeen, l.maxAckSN = false, 0
}

// recomputeExpiry finds the lane's earliest expiry again.
func (l *lane) recomputeExpiry() {
	var min int64
	for _, q := range [][]laneMsg{l.backlog, l.inflight} {
		for i := range q {
			if e := q[i].expiry; e != 0 && !q[i].lapsed && (min == 0 || e < min) {
				min = e
			}
		}
	}
	l.minExpiry = min
}

// lanePrevConfirm takes an ACK of the previous epoch: the messages it
// confirms were delivered, so the peer drops the copies sent again in this
// epoch. A copy still waiting in the backlog is not sent at all; one
// already in KCP stays (the new conversation needs its segments), but it
// is no longer counted as expired if it lapses.
func (c *Conn) lanePrevConfirm(l *lane, una uint32) {
	i := 0
	for ; i < len(l.prevInflight) && int32(l.prevInflight[i].lastSN-una) < 0; i++ {
		c.laneDelivered(l, l.prevInflight[i].ord)
	}
	l.prevInflight = l.prevInflight[i:]
}

// laneDelivered notes that the message with ordinal ord reached the peer.
func (c *Conn) laneDelivered(l *lane, ord uint32) {
	for i := range l.backlog {
		if m := &l.backlog[i]; m.ord == ord {
			l.queued -= len(m.data)
			l.backlog = slices.Delete(l.backlog, i, i+1)
			l.recomputeExpiry()
			return
		}
	}
	for i := range l.inflight {
		if m := &l.inflight[i]; m.ord == ord {
			l.queued -= len(m.data)
			m.data, m.delivered = nil, true
			return
		}
	}
}
