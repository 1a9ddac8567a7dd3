package uxp

import (
	"time"

	"github.com/uxp-go/uxp/internal/replay"
)

// The session's timer: what runs when its deadline in the shard's heap
// passes, and how the next deadline is computed. Runs on c.shard's goroutine.

// onTimer runs when the session's deadline has passed.
func (c *Conn) onTimer(now time.Time) {
	c.timerRan = now
	if c.draining {
		c.drainTimer(now)
		return
	}
	switch {
	case c.state == stateHalfOpen && !now.Before(c.handshakeBy):
		// The client never confirmed: forget it silently.
		c.terminate(nil, CloseNormal, "", false)
		return
	case c.exhausted || c.sendCounter >= replay.RejectAfter:
		c.terminate(ErrCounterExhausted, CloseProtocolError, "", false)
		return
	case c.hb.idleExpired(now) && !c.overloadHeard():
		c.terminate(&IdleTimeoutError{}, CloseIdleTimeout, "", true)
		return
	}
	if c.state != stateHalfOpen {
		c.rekeyTick(now)
		c.pathTick(now)
		c.pmtuTick(now)
		if c.hb.pingDue(now) {
			c.sendPing(now)
		}
		c.fecTimers(now)
		if c.cong.gated {
			c.drainDatagrams(now) // cc_gate.go
		}
		budget := c.admitBudget(now)
		c.setSendBudget(budget) // new segments of the flushes below
		c.arq.Timers(now, raise(c.admission(budget), c.arq.Head()))
		c.noteAppLimited()
		c.congestionTick(now)
		c.noteQueued()
		if c.closingTick(now) {
			return
		}
	}
	c.reschedule(now)
}

// reschedule computes the session's next deadline: the earliest of its
// handshake, linger, heartbeat, idle, FEC, rekey, path, lane KCP and
// message-expiry deadlines.
func (c *Conn) reschedule(now time.Time) {
	d := c.hb.deadline()
	switch c.state {
	case stateHalfOpen:
		d = earlier(d, c.handshakeBy)
	case stateClosing:
		if c.ep.set.closeLinger > 0 {
			d = earlier(d, c.lingerDeadline())
		}
	}
	if c.state != stateHalfOpen {
		d = earlier(d, c.fecDeadline())
		d = earlier(d, c.rekeyDeadline())
		d = earlier(d, c.pathDeadline())
		d = earlier(d, c.pmtu.deadline())
		d = earlier(d, c.arq.Deadline(now))
		d = earlier(d, c.gateDeadline(now))
	}
	if c.exhausted {
		d = earlier(d, now) // end the session (onTimer)
	}
	if !d.IsZero() && !d.After(now) {
		// Due already: run at once, but never spin on a deadline in the
		// past, so at most once a millisecond. The floor counts from when
		// onTimer last ran, not from now: reschedule also runs after every
		// batch of input (pump), and a floor of now+1ms there would push a
		// due deadline on with every packet, so that a session receiving
		// more than one packet a millisecond never ran its timers (its
		// loss reports, FEC flushes and datagram queue waited for a pause
		// in the traffic).
		d = later(now, c.timerRan.Add(time.Millisecond))
	}
	c.deadline = d
	c.shard.schedule(c)
}

// earlier returns the earlier of two deadlines, where the zero time means
// none.
func earlier(d, t time.Time) time.Time {
	if !t.IsZero() && (d.IsZero() || t.Before(d)) {
		return t
	}
	return d
}
