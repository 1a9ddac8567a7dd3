package cc

import "time"

// sampler estimates the delivery rate from acknowledgements, following
// draft-ietf-ccwg-bbr, section "Delivery Rate Samples" (itself from
// draft-cheng-iccrg-delivery-rate-estimation). The per-packet half of its
// state travels in [PacketState].
type sampler struct {
	delivered     int64     // bytes acknowledged so far
	deliveredTime time.Time // when delivered last grew
	firstSentTime time.Time // send time of the newest packet acked (opens the next interval)
	lost          int64     // bytes declared lost so far
	// appLimitedUntil is non-zero while the flow is application-limited:
	// the delivered count at which the bubble in the pipe has drained.
	appLimitedUntil int64
}

// rateSample is the result of one acknowledgement.
type rateSample struct {
	rate         Bandwidth     // delivery rate; valid only if ok
	ok           bool          // a usable rate sample
	appLimited   bool          // the sample's packet was sent app-limited
	delivered    int64         // bytes delivered over the interval
	interval     time.Duration // the sampling interval
	rtt          time.Duration // RTT of the newest packet acked; 0 if none
	txInflight   int           // bytes in flight when the newest acked packet was sent
	ackedBytes   int           // bytes newly acknowledged
	lostBytes    int           // bytes newly declared lost
	lostPackets  int           // packets newly declared lost
	ackedPackets int           // packets newly acknowledged
	maxLostTx    int           // the largest Inflight among the lost packets
	// priorDelivered is the Delivered count of the newest packet acked,
	// which tells whether a packet-timed round has ended; -1 if none.
	priorDelivered int64
}

func (s *sampler) onSent(now time.Time, bytes, inflight int) PacketState {
	if inflight == 0 {
		// The pipe was empty: start a fresh interval rather than count
		// the idle time as part of it.
		s.firstSentTime = now
		s.deliveredTime = now
	}
	return PacketState{
		SentTime:      now,
		Bytes:         bytes,
		Delivered:     s.delivered,
		DeliveredTime: s.deliveredTime,
		FirstSentTime: s.firstSentTime,
		Lost:          s.lost,
		Inflight:      inflight + bytes,
		AppLimited:    s.appLimitedUntil != 0,
	}
}

func (s *sampler) onAppLimited(inflight int) {
	s.appLimitedUntil = max(s.delivered+int64(inflight), 1)
}

// onAck updates the counters with one acknowledgement and returns the rate
// sample. minRTT (zero if unknown) rejects intervals shorter than a round
// trip, which only ACK compression or stretch ACKs produce and which would
// overestimate the rate.
func (s *sampler) onAck(now time.Time, acked, lost []PacketState, minRTT time.Duration) rateSample {
	rs := rateSample{priorDelivered: -1}
	var prior *PacketState
	for i := range acked {
		p := &acked[i]
		s.delivered += int64(p.Bytes)
		s.deliveredTime = now
		rs.ackedBytes += p.Bytes
		rs.ackedPackets++
		// The newest packet (largest Delivered at send) defines the
		// interval; ties go to the later one, which was sent last.
		if prior == nil || p.Delivered >= prior.Delivered {
			prior = p
		}
	}
	for i := range lost {
		s.lost += int64(lost[i].Bytes)
		rs.lostBytes += lost[i].Bytes
		rs.lostPackets++
		rs.maxLostTx = max(rs.maxLostTx, lost[i].Inflight)
	}
	if s.appLimitedUntil != 0 && s.delivered > s.appLimitedUntil {
		s.appLimitedUntil = 0
	}
	if prior == nil {
		return rs
	}
	s.firstSentTime = prior.SentTime
	rs.priorDelivered = prior.Delivered
	rs.appLimited = prior.AppLimited
	rs.txInflight = prior.Inflight
	rs.rtt = now.Sub(prior.SentTime)
	rs.delivered = s.delivered - prior.Delivered
	sendElapsed := prior.SentTime.Sub(prior.FirstSentTime)
	ackElapsed := s.deliveredTime.Sub(prior.DeliveredTime)
	// The larger of the two intervals: the send interval guards against
	// ACK compression, the ack interval against a sender burst.
	rs.interval = max(sendElapsed, ackElapsed)
	if rs.interval <= 0 || minRTT > 0 && rs.interval < minRTT {
		return rs
	}
	rs.rate = Bandwidth(float64(rs.delivered) / rs.interval.Seconds())
	rs.ok = true
	return rs
}

// rttStats keeps the smoothed RTT of RFC 6298 and the all-time minimum.
type rttStats struct {
	smoothed, variance, min, latest time.Duration
}

func (r *rttStats) update(sample time.Duration) {
	if sample <= 0 {
		return
	}
	r.latest = sample
	if r.smoothed == 0 {
		r.smoothed = sample
		r.variance = sample / 2
		r.min = sample
		return
	}
	r.min = min(r.min, sample)
	d := r.smoothed - sample
	if d < 0 {
		d = -d
	}
	r.variance = (3*r.variance + d) / 4
	r.smoothed = (7*r.smoothed + sample) / 8
}
