package uxp

import (
	"sync/atomic"
	"time"
)

// Session-end and handshake statistics that Server.Stats and Dialer.Stats
// report: sessions closed by close reason, and the distributions of
// handshake latency and of the live sessions' RTT.

// closeReasonNames names the SDK's close codes (errors.go: CloseNormal
// and the rest) for ServerStats.SessionsClosed and
// DialerStats.SessionsClosed, indexed by the code. It is the one table the
// counters, their snapshot and the metrics package's
// uxp_sessions_closed_total labels follow: to add a close code, add its
// name here. Codes from CloseApplicationMin up count as
// closeReasonApplication; any other code past the table (a reserved code
// from a newer peer) counts as closeReasonOther.
var closeReasonNames = [...]string{
	CloseNormal:         "normal",
	CloseServerShutdown: "shutdown",
	CloseProtocolError:  "protocol",
	CloseServerFull:     "full",
	CloseAbandoned:      "abandoned",
	CloseIdleTimeout:    "idle_timeout",
	CloseCallbackPanic:  "callback_panic",
}

// The reasons closeReasonNames does not list: application codes
// (CloseWithError), and reserved codes this version does not know.
const (
	closeReasonApplication = "application"
	closeReasonOther       = "other"
)

// CloseReasons returns the reason names CloseCount.Reason takes, in the
// order SessionsClosed lists them; the last two are "application", for
// codes from CloseApplicationMin up, and "other", for reserved codes this
// version does not know. The result is a fresh copy.
func CloseReasons() []string {
	out := make([]string, 0, len(closeReasonNames)+2)
	out = append(out, closeReasonNames[:]...)
	return append(out, closeReasonApplication, closeReasonOther)
}

// CloseCount is how many sessions ended with one close reason.
type CloseCount struct {
	// Reason is one of CloseReasons: the close code this side sent, or
	// received from the peer, when the session ended.
	Reason string
	Count  uint64
}

// closeCounters counts ended sessions by close code: one slot per
// closeReasonNames entry, then one for application codes and one for
// other codes. Any goroutine may add and read.
type closeCounters [len(closeReasonNames) + 2]atomic.Uint64

// inc counts a session that ended with code.
func (cc *closeCounters) inc(code uint16) {
	i := int(code)
	switch {
	case code >= CloseApplicationMin:
		i = len(closeReasonNames)
	case i >= len(closeReasonNames):
		i = len(closeReasonNames) + 1
	}
	cc[i].Add(1)
}

// snapshot lists every reason, zeros included, in CloseReasons order.
func (cc *closeCounters) snapshot() []CloseCount {
	out := make([]CloseCount, len(cc))
	for i := range cc {
		out[i].Count = cc[i].Load()
		switch {
		case i < len(closeReasonNames):
			out[i].Reason = closeReasonNames[i]
		case i == len(closeReasonNames):
			out[i].Reason = closeReasonApplication
		default:
			out[i].Reason = closeReasonOther
		}
	}
	return out
}

// noteClosed counts a session that ends with close code code. A half-open session
// that expired unconfirmed (err nil) never was a session and is not
// counted.
func (ep *endpoint) noteClosed(err error, code uint16, announced bool) {
	if announced || err != nil {
		ep.closes.inc(code)
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
	st.SendsTooBig = t.SendsTooBig
	st.RTT = rttHistogram(ep.table.live())
	st.SessionsClosed = ep.closes.snapshot()
	st.KCPFastPath = ep.kcpFastPath()
}

// kcpFastPath reports whether the endpoint's shards run internal/kcpx's
// fast path (fixed when the shards are made).
func (ep *endpoint) kcpFastPath() bool {
	fast, _ := ep.shards[0].kcp.FastPath()
	return fast
}
