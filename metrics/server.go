package metrics

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/uxp-go/uxp"
)

// collectServer emits a Server's families.
func (c *Collector) collectServer(e *emitter, src Source) {
	st := src.Stats()
	e.gauge("uxp_sessions", float64(st.Sessions))
	e.gauge("uxp_half_open_sessions", float64(st.HalfOpen))
	e.counter("uxp_sessions_accepted_total", st.SessionsAccepted)
	e.closes("uxp_sessions_closed_total", st.SessionsClosed)
	e.counter("uxp_handshake_responses_total", st.HandshakesCompleted)
	e.counter("uxp_handshakes_completed_total", st.HandshakesConfirmed)
	e.histogram("uxp_handshake_duration_seconds", st.HandshakeLatency)
	e.counter("uxp_handshakes_refused_total", st.HandshakesRefused, "fec_policy")
	e.counter("uxp_handshakes_refused_total", st.Handshake.RefusedFull, "server_full")
	e.counter("uxp_handshakes_refused_total", st.Handshake.RefusedClientKey, "client_key")
	e.counter("uxp_handshakes_processed_total", st.Handshake.Processed)
	e.counter("uxp_handshake_timestamp_replays_total", st.Handshake.TimestampReplays)
	e.counter("uxp_cookie_replies_sent_total", st.Handshake.CookiesSent)
	e.counter("uxp_stateless_resets_sent_total", st.Handshake.ResetsSent)
	e.counter("uxp_bytes_sent_total", st.BytesSent)
	e.counter("uxp_bytes_received_total", st.BytesReceived)
	e.counter("uxp_packets_sent_total", st.PacketsSent)
	e.counter("uxp_packets_received_total", st.PacketsReceived)
	e.counter("uxp_messages_sent_total", st.MessagesSent)
	e.counter("uxp_messages_received_total", st.MessagesReceived)
	e.counter("uxp_retransmissions_total", st.Retransmissions)
	e.counter("uxp_tail_probes_total", st.TailProbes)
	e.gauge("uxp_send_queue_bytes", float64(st.SendQueueBytes))
	e.drops("uxp_drops_total", st.Drops)
	e.counter("uxp_fec_shards_sent_total", st.FEC.DataShardsSent, "data")
	e.counter("uxp_fec_shards_sent_total", st.FEC.ParityShardsSent, "parity")
	e.counter("uxp_fec_shards_received_total", st.FEC.DataShardsReceived, "data")
	e.counter("uxp_fec_shards_received_total", st.FEC.ParityShardsRecv, "parity")
	e.counter("uxp_fec_recovered_total", st.FEC.Recovered)
	e.counter("uxp_fec_expired_groups_total", st.FEC.ExpiredGroups)
	e.counter("uxp_migrations_total", st.Migrations)
	e.counter("uxp_rekeys_total", st.Rekeys)
	e.counter("uxp_unhandled_messages_total", st.Unhandled.Datagrams, "datagram")
	e.counter("uxp_unhandled_messages_total", st.Unhandled.LaneMessages, "lane")
	e.histogram("uxp_delivery_latency_seconds", st.Latency)
	e.histogram("uxp_rtt_seconds", st.RTT)

	if !c.opts.PerSession {
		return
	}
	all := readSessions(src)
	c.mu.Lock()
	chosen := c.sticky.choose(all, c.opts.maxSessions())
	c.mu.Unlock()
	for _, s := range chosen {
		sessionMetrics(e, s)
	}
}

// sessionMetrics emits one session's series; laneMetrics adds its lanes'.
func sessionMetrics(e *emitter, s session) {
	id := strconv.FormatUint(uint64(s.id), 10)
	st := &s.stats
	if st.RTT > 0 {
		// Zero means no heartbeat answer yet, not a zero round trip: a
		// series of zeros would drag averages down.
		e.gauge("uxp_session_rtt_seconds", st.RTT.Seconds(), id)
		e.gauge("uxp_session_rtt_variance_seconds", st.RTTVar.Seconds(), id)
	}
	e.gauge("uxp_session_loss_ratio", st.LossIn, id, "in")
	// LossOut is what the peer reports, in adaptive FEC mode only; it is
	// 0 otherwise until the congestion-control work measures it from
	// ACKs.
	e.gauge("uxp_session_loss_ratio", st.LossOut, id, "out")
	e.gauge("uxp_session_send_queue_bytes", float64(st.SendQueueBytes), id)
	e.counter("uxp_session_bytes_total", st.BytesSent, id, "sent")
	e.counter("uxp_session_bytes_total", st.BytesReceived, id, "received")
	e.counter("uxp_session_messages_total", st.MessagesSent, id, "sent")
	e.counter("uxp_session_messages_total", st.MessagesReceived, id, "received")
	e.counter("uxp_session_retransmissions_total", st.Retransmissions, id)
	e.counter("uxp_session_rekeys_total", st.Rekeys, id)
	e.gauge("uxp_session_fec_parity", float64(st.FEC.Parity), id)
	e.histogram("uxp_session_delivery_latency_seconds", st.Latency, id)
	e.counter("uxp_session_datagrams_total", st.Datagrams.Sent, id, "sent")
	e.counter("uxp_session_datagrams_total", st.Datagrams.Received, id, "received")
	e.counter("uxp_session_datagrams_total", st.Datagrams.Superseded, id, "superseded")
	laneMetrics(e, id, st.Lanes)
}

// laneMetrics emits the per-lane series of one session.
func laneMetrics(e *emitter, id string, lanes []uxp.LaneStats) {
	for i, l := range lanes {
		lane := strconv.Itoa(i)
		e.counter("uxp_session_lane_messages_total", l.MessagesSent, id, lane, "sent")
		e.counter("uxp_session_lane_messages_total", l.MessagesReceived, id, lane, "received")
		e.counter("uxp_session_lane_retransmissions_total", l.Retransmissions, id, lane)
		e.counter("uxp_session_lane_expired_total", l.Expired, id, lane)
		e.counter("uxp_session_lane_skipped_total", l.Skipped, id, lane)
		e.gauge("uxp_session_lane_queued_bytes", float64(l.QueuedBytes), id, lane)
	}
}

// session is one live session as read at scrape time.
type session struct {
	id     uint32
	remote string
	stats  uxp.ConnStats
}

func (s *session) traffic() uint64 { return s.stats.BytesSent + s.stats.BytesReceived }

// readSessions reads every live session of src.
func readSessions(src Source) []session {
	var all []session
	src.RangeConns(func(c *uxp.Conn) bool {
		// RemoteAddr is never a nil interface (a session always has a
		// peer address).
		all = append(all, session{id: c.ID(), remote: c.RemoteAddr().String(), stats: c.Stats()})
		return true
	})
	return all
}

// busiestFirst orders sessions by traffic, most first, then by ID.
func busiestFirst(a, b session) int {
	if c := cmp.Compare(b.traffic(), a.traffic()); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// topSessions keeps the maxN busiest of all, ordered by session ID: the
// debug page's choice, made afresh on every request.
func topSessions(all []session, maxN int) []session {
	if len(all) > maxN {
		slices.SortFunc(all, busiestFirst)
		all = all[:maxN]
	}
	slices.SortFunc(all, func(a, b session) int { return cmp.Compare(a.id, b.id) })
	return all
}

// stickySet is the set of sessions that have per-session series. A
// session stays in it until it ends; a free place goes to the busiest
// session not in it. So a session's series do not vanish between scrapes
// because another session sent more, and the set never holds more than
// maxN sessions. The owner (Collector) serialises calls.
type stickySet struct {
	ids map[uint32]struct{}
}

// choose updates the set from all, the live sessions, and returns the
// chosen ones ordered by session ID. A session ID that ends and is reused
// by a new session between two scrapes keeps its place; its counters then
// restart, which Prometheus treats as a counter reset.
func (s *stickySet) choose(all []session, maxN int) []session {
	if s.ids == nil {
		s.ids = make(map[uint32]struct{})
	}
	live := make(map[uint32]struct{}, len(all))
	for i := range all {
		live[all[i].id] = struct{}{}
	}
	for id := range s.ids {
		if _, ok := live[id]; !ok {
			delete(s.ids, id) // the session ended
		}
	}
	var chosen, rest []session
	for _, x := range all {
		if _, ok := s.ids[x.id]; ok {
			chosen = append(chosen, x)
		} else {
			rest = append(rest, x)
		}
	}
	if free := maxN - len(chosen); free > 0 && len(rest) > 0 {
		slices.SortFunc(rest, busiestFirst)
		for _, x := range rest[:min(free, len(rest))] {
			s.ids[x.id] = struct{}{}
			chosen = append(chosen, x)
		}
	}
	slices.SortFunc(chosen, func(a, b session) int { return cmp.Compare(a.id, b.id) })
	return chosen
}
