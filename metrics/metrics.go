// Package metrics exports a uxp Server's statistics: Prometheus text
// exposition (through github.com/prometheus/client_golang) and a debug page
// of live sessions at /debug/uxp, as JSON and as an HTML table.
//
// Everything is read at scrape time from Server.Stats, Server.RangeConns
// and Conn.Stats, which are snapshots of counters the SDK keeps anyway, so
// an exporter that nobody scrapes costs nothing. The core uxp package does
// not import this one.
//
// # Usage
//
//	srv, _ := uxp.NewServer(pc, handler, cfg)
//	go http.ListenAndServe("127.0.0.1:9100", metrics.Handler(srv, nil))
//
// or, with a registry of your own:
//
//	reg.MustRegister(metrics.NewCollector(srv, nil))
//
// The metric names are listed in [Metrics] and in the README's
// Observability table.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/uxp-go/uxp"
)

// Source is what the exporter reads. *uxp.Server implements it.
type Source interface {
	Stats() uxp.ServerStats
	RangeConns(f func(c *uxp.Conn) bool)
}

// Options tunes the exporter. A nil *Options means the zero value.
type Options struct {
	// PerSession adds the uxp_session_* series, one set per live session
	// labelled by session ID. The zero value (false) exports server totals
	// only: sessions come and go, and every session ever exported stays in
	// a Prometheus server's memory until it ages out. Turn it on for a few
	// long-lived sessions, or use the debug page instead.
	PerSession bool

	// MaxSessions bounds how many sessions the debug page lists and, with
	// PerSession, how many get series; the highest-traffic ones are kept.
	// Zero means 1000. Negative means no limit.
	MaxSessions int
}

const defaultMaxSessions = 1000

func (o *Options) maxSessions() int {
	switch {
	case o == nil || o.MaxSessions == 0:
		return defaultMaxSessions
	case o.MaxSessions < 0:
		return int(^uint(0) >> 1)
	}
	return o.MaxSessions
}

// Metric documents one exported metric family.
type Metric struct {
	Name   string
	Type   string // "counter", "gauge" or "histogram"
	Labels []string
	Help   string
	// PerSession marks the uxp_session_* families, present only with
	// Options.PerSession and at least one live session.
	PerSession bool
}

// Metrics lists every metric family the exporter can produce. The README's
// Observability table is generated from the same facts, and a test checks
// both against the exporter's output.
var Metrics = []Metric{
	{Name: "uxp_sessions", Type: "gauge", Help: "Live, established sessions."},
	{Name: "uxp_half_open_sessions", Type: "gauge", Help: "Handshakes answered, waiting for the client's first packet."},
	{Name: "uxp_sessions_accepted_total", Type: "counter", Help: "Sessions announced through OnNewConnComing."},
	{Name: "uxp_handshakes_completed_total", Type: "counter", Help: "Responses sent for new initiations."},
	{Name: "uxp_handshakes_refused_total", Type: "counter", Labels: []string{"reason"}, Help: "Authenticated handshake refusals, by reason (fec_policy, server_full, client_key)."},
	{Name: "uxp_handshakes_processed_total", Type: "counter", Help: "Initiations that reached the Diffie-Hellman stage."},
	{Name: "uxp_handshake_timestamp_replays_total", Type: "counter", Help: "Noise IK initiations ignored as replays (timestamp not newer)."},
	{Name: "uxp_cookie_replies_sent_total", Type: "counter", Help: "Cookie replies sent under load to initiations without a valid mac2."},
	{Name: "uxp_stateless_resets_sent_total", Type: "counter", Help: "Stateless resets sent for transport packets of unknown sessions."},
	{Name: "uxp_bytes_sent_total", Type: "counter", Help: "UDP payload bytes sent."},
	{Name: "uxp_bytes_received_total", Type: "counter", Help: "UDP payload bytes received in authenticated packets."},
	{Name: "uxp_packets_sent_total", Type: "counter", Help: "Datagrams sent."},
	{Name: "uxp_packets_received_total", Type: "counter", Help: "Authenticated datagrams received."},
	{Name: "uxp_messages_sent_total", Type: "counter", Help: "Messages handed to the reliability layer."},
	{Name: "uxp_messages_received_total", Type: "counter", Help: "Messages delivered to OnNewDataComing."},
	{Name: "uxp_retransmissions_total", Type: "counter", Help: "Reliable data segments sent more than once."},
	{Name: "uxp_tail_probes_total", Type: "counter", Help: "Data segments resent because no acknowledgement came within one probe timeout."},
	{Name: "uxp_send_queue_bytes", Type: "gauge", Help: "Bytes the live sessions hold for sending."},
	{Name: "uxp_drops_total", Type: "counter", Labels: []string{"reason"}, Help: "Datagrams dropped, by reason (malformed, auth_failed, replay, unknown_session, overload, rate_limited)."},
	{Name: "uxp_fec_shards_sent_total", Type: "counter", Labels: []string{"kind"}, Help: "FEC shards sent, by kind (data, parity)."},
	{Name: "uxp_fec_shards_received_total", Type: "counter", Labels: []string{"kind"}, Help: "FEC shards received, by kind (data, parity)."},
	{Name: "uxp_fec_recovered_total", Type: "counter", Help: "Packets rebuilt from FEC parity."},
	{Name: "uxp_fec_expired_groups_total", Type: "counter", Help: "FEC groups dropped while still missing data."},
	{Name: "uxp_migrations_total", Type: "counter", Help: "Sessions moved to a validated new client address."},
	{Name: "uxp_rekeys_total", Type: "counter", Help: "Key rotations completed, summed over sessions."},
	{Name: "uxp_delivery_latency_seconds", Type: "histogram", Help: "Message delivery latency of sampled sent messages, estimated with the heartbeat RTT."},

	{Name: "uxp_session_rtt_seconds", Type: "gauge", Labels: []string{"session"}, PerSession: true, Help: "Smoothed heartbeat round-trip time."},
	{Name: "uxp_session_rtt_variance_seconds", Type: "gauge", Labels: []string{"session"}, PerSession: true, Help: "Round-trip time variation."},
	{Name: "uxp_session_loss_ratio", Type: "gauge", Labels: []string{"session", "direction"}, PerSession: true, Help: "Measured packet loss, by direction (in, out)."},
	{Name: "uxp_session_send_queue_bytes", Type: "gauge", Labels: []string{"session"}, PerSession: true, Help: "Bytes the session holds for sending."},
	{Name: "uxp_session_bytes_total", Type: "counter", Labels: []string{"session", "direction"}, PerSession: true, Help: "UDP payload bytes, by direction (sent, received)."},
	{Name: "uxp_session_messages_total", Type: "counter", Labels: []string{"session", "direction"}, PerSession: true, Help: "Messages, by direction (sent, received)."},
	{Name: "uxp_session_retransmissions_total", Type: "counter", Labels: []string{"session"}, PerSession: true, Help: "Reliable data segments sent more than once."},
	{Name: "uxp_session_rekeys_total", Type: "counter", Labels: []string{"session"}, PerSession: true, Help: "Key rotations completed."},
	{Name: "uxp_session_fec_parity", Type: "gauge", Labels: []string{"session"}, PerSession: true, Help: "Current FEC parity shards per group."},
	{Name: "uxp_session_delivery_latency_seconds", Type: "histogram", Labels: []string{"session"}, PerSession: true, Help: "Message delivery latency of the session's sampled sent messages."},
	{Name: "uxp_session_lane_messages_total", Type: "counter", Labels: []string{"session", "lane", "direction"}, PerSession: true, Help: "Reliable messages on one lane, by direction (sent, received)."},
	{Name: "uxp_session_lane_retransmissions_total", Type: "counter", Labels: []string{"session", "lane"}, PerSession: true, Help: "Data segments of one lane sent more than once."},
	{Name: "uxp_session_lane_expired_total", Type: "counter", Labels: []string{"session", "lane"}, PerSession: true, Help: "Messages of one lane this side abandoned at their deadline."},
	{Name: "uxp_session_lane_skipped_total", Type: "counter", Labels: []string{"session", "lane"}, PerSession: true, Help: "Messages of one lane the peer abandoned, skipped here."},
	{Name: "uxp_session_lane_queued_bytes", Type: "gauge", Labels: []string{"session", "lane"}, PerSession: true, Help: "Payload bytes one lane holds for sending."},
	{Name: "uxp_session_datagrams_total", Type: "counter", Labels: []string{"session", "direction"}, PerSession: true, Help: "Unreliable datagrams, by direction (sent, received, superseded)."},
}

// Collector is a prometheus.Collector reading a Source at scrape time.
type Collector struct {
	src   Source
	opts  Options
	descs map[string]*prometheus.Desc
}

// NewCollector returns a collector for src. opts may be nil.
func NewCollector(src Source, opts *Options) *Collector {
	c := &Collector{src: src, descs: make(map[string]*prometheus.Desc, len(Metrics))}
	if opts != nil {
		c.opts = *opts
	}
	for _, m := range Metrics {
		c.descs[m.Name] = prometheus.NewDesc(m.Name, m.Help, m.Labels, nil)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range Metrics {
		if m.PerSession && !c.opts.PerSession {
			continue
		}
		ch <- c.descs[m.Name]
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	e := emitter{ch: ch, descs: c.descs}
	e.gauge("uxp_sessions", float64(st.Sessions))
	e.gauge("uxp_half_open_sessions", float64(st.HalfOpen))
	e.counter("uxp_sessions_accepted_total", st.SessionsAccepted)
	e.counter("uxp_handshakes_completed_total", st.HandshakesCompleted)
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
	for _, d := range dropReasons(st.Drops) {
		e.counter("uxp_drops_total", d.n, d.reason)
	}
	e.counter("uxp_fec_shards_sent_total", st.FEC.DataShardsSent, "data")
	e.counter("uxp_fec_shards_sent_total", st.FEC.ParityShardsSent, "parity")
	e.counter("uxp_fec_shards_received_total", st.FEC.DataShardsReceived, "data")
	e.counter("uxp_fec_shards_received_total", st.FEC.ParityShardsRecv, "parity")
	e.counter("uxp_fec_recovered_total", st.FEC.Recovered)
	e.counter("uxp_fec_expired_groups_total", st.FEC.ExpiredGroups)
	e.counter("uxp_migrations_total", st.Migrations)
	e.counter("uxp_rekeys_total", st.Rekeys)
	e.histogram("uxp_delivery_latency_seconds", st.Latency)

	if !c.opts.PerSession {
		return
	}
	for _, s := range topSessions(c.src, c.opts.maxSessions()) {
		sessionMetrics(&e, s)
	}
}

// sessionMetrics emits one session's series; laneMetrics adds its lanes'.
func sessionMetrics(e *emitter, s session) {
	id := strconv.FormatUint(uint64(s.id), 10)
	st := &s.stats
	e.gauge("uxp_session_rtt_seconds", st.RTT.Seconds(), id)
	e.gauge("uxp_session_rtt_variance_seconds", st.RTTVar.Seconds(), id)
	e.gauge("uxp_session_loss_ratio", st.LossIn, id, "in")
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

type dropCount struct {
	reason string
	n      uint64
}

func dropReasons(d uxp.DropStats) []dropCount {
	return []dropCount{
		{"malformed", d.Malformed},
		{"auth_failed", d.AuthFailed},
		{"replay", d.Replay},
		{"unknown_session", d.UnknownSession},
		{"overload", d.Overload},
		{"rate_limited", d.RateLimited},
		{"recv_bound", d.RecvBound},
	}
}

type emitter struct {
	ch    chan<- prometheus.Metric
	descs map[string]*prometheus.Desc
}

func (e *emitter) gauge(name string, v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(e.descs[name], prometheus.GaugeValue, v, labels...)
}

func (e *emitter) counter(name string, v uint64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(e.descs[name], prometheus.CounterValue, float64(v), labels...)
}

// latencyBounds are the histogram's bucket bounds in seconds.
var latencyBounds = func() []float64 {
	b := uxp.LatencyBounds()
	out := make([]float64, len(b))
	for i, d := range b {
		out[i] = d.Seconds()
	}
	return out
}()

func (e *emitter) histogram(name string, h uxp.Histogram, labels ...string) {
	buckets := make(map[float64]uint64, len(latencyBounds))
	var cum uint64
	for i, ub := range latencyBounds {
		cum += h.Counts[i]
		buckets[ub] = cum
	}
	// The total comes from the buckets, not h.Count, so that a snapshot
	// racing a sample still has count >= every bucket.
	total := cum + h.Counts[len(latencyBounds)]
	e.ch <- prometheus.MustNewConstHistogram(e.descs[name], total, h.Sum.Seconds(), buckets, labels...)
}

// Handler serves src's metrics: Prometheus text exposition at /metrics and
// the debug page at /debug/uxp (HTML; JSON with ?format=json). Any other
// path is 404. opts may be nil. Mount it at the root of a mux or server;
// it registers its collector in a registry of its own, with the Go runtime
// and process collectors.
func Handler(src Source, opts *Options) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src, opts))
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.Handle("GET /debug/uxp", DebugHandler(src, opts))
	return mux
}

// scrapeTime is how old the data on a page may be; Collect is synchronous,
// so this only labels the debug page.
func scrapeTime() time.Time { return time.Now().UTC() }
