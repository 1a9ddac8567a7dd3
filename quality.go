package uxp

import (
	"math"
	"sync/atomic"
	"time"
)

// Quality is a session's connection quality, cheap enough to read every
// tick of a game loop: Conn.Quality reads it from atomic counters, with no
// lock and no allocation.
type Quality struct {
	// RTT is the smoothed round-trip time and Jitter its variation (RFC
	// 6298 RTTVAR), both from the heartbeat; zero until one was answered.
	RTT, Jitter time.Duration
	// InBytesPerSec, OutBytesPerSec, InPacketsPerSec and OutPacketsPerSec
	// are UDP payload rates, averaged over the last rate interval: the
	// time between two Quality calls at least one second apart. They are
	// zero until a second after the first call; calls within a second of
	// the last update return the same rates.
	InBytesPerSec, OutBytesPerSec     float64
	InPacketsPerSec, OutPacketsPerSec float64
	// LossIn is the fraction of the peer's packets lost on the way here,
	// over about the last 500 ms; LossOut the fraction of ours lost on the
	// way there, as the peer reports it (only with adaptive FEC; zero
	// otherwise). See ConnStats.LossIn.
	LossIn, LossOut float64
	// PendingBytes is the reliable payload the session's lanes hold for
	// sending (waiting for the window, or sent and unacknowledged), and
	// LanePending each lane's share (lane i at index i; entries beyond
	// Conn.Lanes are zero). Writes the worker has not taken yet (at most
	// one turn of its loop) are not included.
	PendingBytes int
	LanePending  [QualityLanes]int
	// QueueTime estimates how long a message written now waits before it
	// is sent: PendingBytes at OutBytesPerSec. Zero when nothing is
	// pending or no rate has been measured yet.
	QueueTime time.Duration
}

// QualityLanes is the length of Quality.LanePending: the most lanes a
// session may have (Config.Lanes).
const QualityLanes = maxLanes

// qualityState holds the rate estimate: the counters at the last update
// and the rates it computed. Whichever Quality call finds the interval
// over claims the update with a compare-and-swap on at.
type qualityState struct {
	at                  atomic.Int64 // endpoint.mono of the last update (timebase.go); 0 = none yet
	bytesIn, bytesOut   atomic.Uint64
	pktsIn, pktsOut     atomic.Uint64
	rBytesIn, rBytesOut atomic.Uint64 // float64 bits
	rPktsIn, rPktsOut   atomic.Uint64
}

// qualityInterval is the shortest interval the rates are averaged over.
// /* Implementation constant */
const qualityInterval = time.Second

// Quality returns the session's connection quality. Safe from any
// goroutine; it takes no lock and does not allocate.
func (c *Conn) Quality() Quality {
	q := Quality{
		RTT:     time.Duration(c.rtt.Load()),
		Jitter:  time.Duration(c.rttVar.Load()),
		LossIn:  float64(c.lossIn.Load()) / 10000,
		LossOut: float64(c.lossOut.Load()) / 10000,
	}
	st := &c.ext.q
	now := c.ep.monoNow()
	last := st.at.Load()
	switch {
	case last == 0:
		// The first call starts the first interval; the rates stay zero
		// until it is over.
		if st.at.CompareAndSwap(0, now) {
			st.bytesIn.Store(c.traffic.bytesIn.Load())
			st.bytesOut.Store(c.traffic.bytesOut.Load())
			st.pktsIn.Store(c.traffic.packetsIn.Load())
			st.pktsOut.Store(c.traffic.packetsOut.Load())
		}
	case now-last >= int64(qualityInterval) && st.at.CompareAndSwap(last, now):
		// This call won the update; a concurrent one reads the previous
		// rates, or a mix of old and new, which is as good.
		sec := float64(now-last) / float64(time.Second)
		rate := func(prev *atomic.Uint64, cur uint64, out *atomic.Uint64) {
			out.Store(math.Float64bits(float64(cur-prev.Swap(cur)) / sec))
		}
		rate(&st.bytesIn, c.traffic.bytesIn.Load(), &st.rBytesIn)
		rate(&st.bytesOut, c.traffic.bytesOut.Load(), &st.rBytesOut)
		rate(&st.pktsIn, c.traffic.packetsIn.Load(), &st.rPktsIn)
		rate(&st.pktsOut, c.traffic.packetsOut.Load(), &st.rPktsOut)
	}
	q.InBytesPerSec = math.Float64frombits(st.rBytesIn.Load())
	q.OutBytesPerSec = math.Float64frombits(st.rBytesOut.Load())
	q.InPacketsPerSec = math.Float64frombits(st.rPktsIn.Load())
	q.OutPacketsPerSec = math.Float64frombits(st.rPktsOut.Load())
	for i := range min(c.arq.Len(), len(q.LanePending)) {
		q.LanePending[i] = int(c.arq.Counters(i).Queued.Load())
	}
	// The lanes' total as the shard last published it. Messages written
	// since and not yet taken by the shard (at most one turn of its loop)
	// are guarded by Conn.mu and left out, to keep this lock-free.
	q.PendingBytes = int(c.kcpQueued.Load())
	if q.PendingBytes > 0 && q.OutBytesPerSec > 0 {
		q.QueueTime = time.Duration(float64(q.PendingBytes) / q.OutBytesPerSec * float64(time.Second))
	}
	return q
}
