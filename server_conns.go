package uxp

import (
	"sync"
	"time"
)

// connSet is the set of a Server's announced, live sessions, readable from
// any goroutine. Shards add a session when it is announced and remove it
// when it ends; RangeConns reads it.
//
// It also totals the sessions' latency histograms for Server.Stats: the
// live sessions' plus closed, the sum of every removed session's. A
// session records samples only while established, and it leaves the set
// (its final histogram folded into closed) under the same lock, so a total
// never counts a session twice or drops it. Summing at read time, instead
// of recording each sample in a second, shard-wide histogram, keeps the
// per-message cost at two atomic adds.
type connSet struct {
	mu     sync.Mutex
	m      map[*Conn]struct{}
	closed Histogram
}

func (s *connSet) add(c *Conn) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[*Conn]struct{})
	}
	s.m[c] = struct{}{}
	s.mu.Unlock()
}

// remove takes c out of the set; c's shard calls it after terminate, when
// c records no more samples.
func (s *connSet) remove(c *Conn) {
	s.mu.Lock()
	if _, ok := s.m[c]; ok {
		delete(s.m, c)
		s.closed.add(c.latency.snapshot())
	}
	s.mu.Unlock()
}

// snapshot copies the set, so that callers iterate without the lock.
func (s *connSet) snapshot() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Conn, 0, len(s.m))
	for c := range s.m {
		out = append(out, c)
	}
	return out
}

// RangeConns calls f for each live session the Server announced through
// OnNewConnComing, in no particular order, until f returns false. It works
// on a snapshot taken when it starts and holds no lock while f runs, so f
// may call any Conn method, Close included; a session may end while f
// looks at it (its Stats then stay readable). Safe for concurrent use. It
// is meant for monitoring (the metrics package uses it), not for every
// packet.
func (s *Server) RangeConns(f func(c *Conn) bool) {
	for _, c := range s.live.snapshot() {
		if !f(c) {
			return
		}
	}
}

// totals sums the live sessions' send queues, and every session's latency
// histogram, live or closed; rtt is the distribution of the live
// sessions' smoothed RTTs (those with a sample).
func (s *connSet) totals() (queued, held int, latency, rtt Histogram) {
	s.mu.Lock()
	defer s.mu.Unlock()
	latency = s.closed
	for c := range s.m {
		q := c.sendQueued()
		queued += q
		held += q + int(c.segBytes.Load())
		latency.add(c.latency.snapshot())
		if r := time.Duration(c.rtt.Load()); r > 0 {
			rtt.record(r)
		}
	}
	return queued, held, latency, rtt
}
