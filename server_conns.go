package uxp

import "sync"

// connSet is the set of a Server's announced, live sessions, readable from
// any goroutine. Shards add a session when it is announced and remove it
// when it ends; RangeConns reads it.
type connSet struct {
	mu sync.Mutex
	m  map[*Conn]struct{}
}

func (s *connSet) add(c *Conn) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[*Conn]struct{})
	}
	s.m[c] = struct{}{}
	s.mu.Unlock()
}

func (s *connSet) remove(c *Conn) {
	s.mu.Lock()
	delete(s.m, c)
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

// sendQueueBytes sums the live sessions' send queues.
func (s *connSet) sendQueueBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.m {
		n += c.sendQueued()
	}
	return n
}
