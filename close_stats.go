package uxp

import (
	"sync/atomic"
	"time"
)

// Session-end and handshake statistics that Server.Stats and Dialer.Stats
// report: sessions closed by close reason, and the distributions of
// handshake latency and of the live sessions' RTT.

// closeReasonNames names the close reasons (packet.go) for
// ServerStats.SessionsClosed and DialerStats.SessionsClosed, indexed by the
// reason byte. It is the one table the counters, their snapshot and the
// metrics package's uxp_sessions_closed_total labels follow: to add a
// close reason, add its name here. A reason byte past the table (a peer's
// unknown code) counts as closeReasonOther.
var closeReasonNames = [...]string{
	closeNormal:   "normal",
	closeShutdown: "shutdown",
	closeProtocol: "protocol",
	closeFull:     "full",
}

// closeReasonOther names the reasons closeReasonNames does not know.
const closeReasonOther = "other"

// CloseReasons returns the reason names CloseCount.Reason takes, in the
// order SessionsClosed lists them; the last is "other", for reason codes
// this version does not know. The result is a fresh copy.
func CloseReasons() []string {
	out := make([]string, 0, len(closeReasonNames)+1)
	out = append(out, closeReasonNames[:]...)
	return append(out, closeReasonOther)
}

// CloseCount is how many sessions ended with one close reason.
type CloseCount struct {
	// Reason is one of CloseReasons: the close code this side sent, or
	// received from the peer, when the session ended.
	Reason string
	Count  uint64
}

// closeCounters counts ended sessions by close reason: one slot per
// closeReasonNames entry and a last one for other codes. Any goroutine
// may add and read.
type closeCounters [len(closeReasonNames) + 1]atomic.Uint64

// inc counts a session that ended with reason.
func (cc *closeCounters) inc(reason byte) {
	i := int(reason)
	if i >= len(closeReasonNames) {
		i = len(closeReasonNames)
	}
	cc[i].Add(1)
}

// snapshot lists every reason, zeros included, in CloseReasons order.
func (cc *closeCounters) snapshot() []CloseCount {
	out := make([]CloseCount, len(cc))
	for i := range cc {
		out[i].Count = cc[i].Load()
		if i < len(closeReasonNames) {
			out[i].Reason = closeReasonNames[i]
		} else {
			out[i].Reason = closeReasonOther
		}
	}
	return out
}

// noteClosed counts a session that ends with reason. A half-open session
// that expired unconfirmed (err nil) never was a session and is not
// counted.
func (ep *endpoint) noteClosed(err error, reason byte, announced bool) {
	if announced || err != nil {
		ep.closes.inc(reason)
	}
}

// record adds one sample to a Histogram snapshot.
func (h *Histogram) record(d time.Duration) {
	d = max(d, 0)
	h.Counts[bucketOf(d)]++
	h.Count++
	h.Sum += d
}

// rttHistogram is the distribution of conns' smoothed RTTs; sessions
// without an RTT sample yet are left out.
func rttHistogram(conns []*Conn) Histogram {
	var h Histogram
	for _, c := range conns {
		if r := time.Duration(c.rtt.Load()); r > 0 {
			h.record(r)
		}
	}
	return h
}

// addEndpointStats adds the Dialer's traffic totals (its shards'),
// closes and RTT distribution to st.
func (ep *endpoint) addEndpointStats(st *DialerStats) {
	var t ServerStats
	for _, sh := range ep.shards {
		sh.traffic.addTo(&t)
	}
	st.BytesSent, st.BytesReceived = t.BytesSent, t.BytesReceived
	st.PacketsSent, st.PacketsReceived = t.PacketsSent, t.PacketsReceived
	st.MessagesSent, st.MessagesReceived = t.MessagesSent, t.MessagesReceived
	st.Retransmissions = t.Retransmissions
	st.RTT = rttHistogram(ep.table.live())
	st.SessionsClosed = ep.closes.snapshot()
}
