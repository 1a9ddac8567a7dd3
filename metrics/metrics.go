// Package metrics exports uxp statistics: Prometheus text exposition
// (through github.com/prometheus/client_golang) for a Server, a Client or
// a Dialer, and a debug page of a Server's live sessions at /debug/uxp, as
// JSON and as an HTML table.
//
// Everything is read at scrape time from Server.Stats, Server.RangeConns,
// Conn.Stats, Client.Stats and Dialer.Stats, which are snapshots of
// counters the SDK keeps anyway, so an exporter that nobody scrapes costs
// nothing. The core uxp package does not import this one.
//
// # Usage
//
//	srv, _ := uxp.NewServer(pc, handler, cfg)
//	go http.ListenAndServe("127.0.0.1:9100", metrics.MetricsHandler(srv, nil))
//	go http.ListenAndServe("127.0.0.1:9101", metrics.DebugHandler(srv, nil))
//
// or, with a registry of your own:
//
//	reg.MustRegister(metrics.NewCollector(srv, nil))
//	reg.MustRegister(metrics.NewClientCollector(cli, nil))
//	reg.MustRegister(metrics.NewDialerCollector(d, nil))
//
// [Handler] serves both /metrics and /debug/uxp on one listener, for a
// quick look; the debug page lists every client's address, so serve it
// with [DebugHandler] on an internal address when /metrics is scraped from
// outside.
//
// # Several exporters in one registry
//
// Two collectors of the same kind (two Servers, say) export the same
// metric names, and a registry refuses the second with "duplicate metrics
// collector registration attempted" unless their series differ. Give each
// its own [Options.ConstLabels]:
//
//	reg.MustRegister(metrics.NewCollector(game, &metrics.Options{ConstLabels: map[string]string{"server": "game"}}))
//	reg.MustRegister(metrics.NewCollector(chat, &metrics.Options{ConstLabels: map[string]string{"server": "chat"}}))
//
// Every collector exports uxp_build_info, so a Server and a Client in one
// registry need distinct ConstLabels too.
//
// The metric names are listed in [Metrics] and in the README's
// Observability table.
package metrics

import (
	"runtime"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/uxp-go/uxp"
)

// Source is what the server exporter reads. *uxp.Server implements it.
type Source interface {
	Stats() uxp.ServerStats
	RangeConns(f func(c *uxp.Conn) bool)
}

// ClientSource is what the client exporter reads. *uxp.Client implements
// it.
type ClientSource interface {
	Stats() uxp.ConnStats
}

// DialerSource is what the Dialer exporter reads. *uxp.Dialer implements
// it.
type DialerSource interface {
	Stats() uxp.DialerStats
}

// Options tunes an exporter. A nil *Options means the zero value.
type Options struct {
	// PerSession adds the uxp_session_* series to a server exporter, one
	// set per session labelled by session ID. The zero value (false)
	// exports server totals only: sessions come and go, and every session
	// ever exported stays in a Prometheus server's memory until it ages
	// out. Turn it on for a bounded number of long-lived sessions, or use
	// the debug page instead.
	//
	// Which sessions get series is sticky: a session chosen once keeps its
	// series until it ends, and a free place goes to the busiest session
	// (bytes both ways) not yet chosen. So series do not come and go
	// between scrapes as traffic shifts.
	PerSession bool

	// MaxSessions bounds how many sessions the debug page lists (the
	// busiest ones) and, with PerSession, how many sessions have series
	// at once. Zero means 1000. Negative means no limit.
	MaxSessions int

	// ConstLabels are added to every series of the exporter, to tell
	// several exporters in one registry apart (see the package doc).
	// Nil or empty adds none. A name that is also one of a family's own
	// labels (Metric.Labels: session, reason, direction, …) makes the
	// registry refuse the collector.
	ConstLabels map[string]string
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

// Exporter kinds, the values of Metric.Exporter.
const (
	ExporterServer = "server" // NewCollector
	ExporterClient = "client" // NewClientCollector
	ExporterDialer = "dialer" // NewDialerCollector
	ExporterAll    = "all"    // every exporter (uxp_build_info)
)

// Metric documents one exported metric family.
type Metric struct {
	Name   string
	Type   string // "counter", "gauge" or "histogram"
	Labels []string
	Help   string
	// Exporter says which collector produces the family: ExporterServer,
	// ExporterClient, ExporterDialer or ExporterAll.
	Exporter string
	// PerSession marks the uxp_session_* families, present only with
	// Options.PerSession and at least one live session.
	PerSession bool
	// Optional marks families left out until they have a valid value (an
	// RTT before the first heartbeat answer).
	Optional bool
}

// Metrics lists every metric family the exporters can produce. The
// README's Observability table holds the same facts, and a test checks
// both against the exporters' output.
var Metrics = []Metric{
	{Name: "uxp_build_info", Type: "gauge", Labels: []string{"version", "goversion"}, Exporter: ExporterAll, Help: "Always 1; the labels give uxp.Version and the Go version the binary was built with."},

	{Name: "uxp_sessions", Type: "gauge", Help: "Live, established sessions."},
	{Name: "uxp_half_open_sessions", Type: "gauge", Help: "Handshakes answered, waiting for the client's first packet."},
	{Name: "uxp_sessions_accepted_total", Type: "counter", Help: "Sessions announced through OnNewConnComing."},
	{Name: "uxp_sessions_closed_total", Type: "counter", Labels: []string{"reason"}, Help: "Sessions ended, by close reason (uxp.CloseReasons)."},
	{Name: "uxp_handshake_responses_total", Type: "counter", Help: "Responses sent for new initiations."},
	{Name: "uxp_handshakes_completed_total", Type: "counter", Help: "Handshakes the client completed: its first transport packet authenticated."},
	{Name: "uxp_handshake_duration_seconds", Type: "histogram", Help: "Completed handshakes, from the server processing the initiation to the client's first transport packet."},
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
	{Name: "uxp_drops_total", Type: "counter", Labels: []string{"reason"}, Help: "Datagrams dropped, by reason (malformed, auth_failed, replay, unknown_session, overload, rate_limited, recv_bound: KCP data segments left out by the receive bounds)."},
	{Name: "uxp_fec_shards_sent_total", Type: "counter", Labels: []string{"kind"}, Help: "FEC shards sent, by kind (data, parity)."},
	{Name: "uxp_fec_shards_received_total", Type: "counter", Labels: []string{"kind"}, Help: "FEC shards received, by kind (data, parity)."},
	{Name: "uxp_fec_recovered_total", Type: "counter", Help: "Packets rebuilt from FEC parity."},
	{Name: "uxp_fec_expired_groups_total", Type: "counter", Help: "FEC groups dropped while still missing data."},
	{Name: "uxp_migrations_total", Type: "counter", Help: "Sessions moved to a validated new client address."},
	{Name: "uxp_rekeys_total", Type: "counter", Help: "Key rotations completed, summed over sessions."},
	{Name: "uxp_unhandled_messages_total", Type: "counter", Labels: []string{"kind"}, Help: "Messages that arrived for a handler without the method that takes them, by kind (datagram, lane): see ConnStats.Unhandled."},
	{Name: "uxp_delivery_latency_seconds", Type: "histogram", Help: "Message delivery latency of sampled sent messages, estimated with the heartbeat RTT."},
	{Name: "uxp_rtt_seconds", Type: "histogram", Help: "Smoothed heartbeat round-trip times of the live sessions that have one, one sample per session."},

	{Name: "uxp_session_rtt_seconds", Type: "gauge", Labels: []string{"session"}, PerSession: true, Optional: true, Help: "Smoothed heartbeat round-trip time; absent until the first heartbeat answer."},
	{Name: "uxp_session_rtt_variance_seconds", Type: "gauge", Labels: []string{"session"}, PerSession: true, Optional: true, Help: "Round-trip time variation; absent until the first heartbeat answer."},
	{Name: "uxp_session_loss_ratio", Type: "gauge", Labels: []string{"session", "direction"}, PerSession: true, Help: "Measured packet loss, by direction (in; out, reported by the peer in adaptive FEC mode only)."},
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

	{Name: "uxp_client_bytes_total", Type: "counter", Labels: []string{"direction"}, Exporter: ExporterClient, Help: "UDP payload bytes, by direction (sent, received)."},
	{Name: "uxp_client_packets_total", Type: "counter", Labels: []string{"direction"}, Exporter: ExporterClient, Help: "Authenticated datagrams, by direction (sent, received)."},
	{Name: "uxp_client_messages_total", Type: "counter", Labels: []string{"direction"}, Exporter: ExporterClient, Help: "Messages, by direction (sent, received)."},
	{Name: "uxp_client_retransmissions_total", Type: "counter", Exporter: ExporterClient, Help: "Reliable data segments sent more than once."},
	{Name: "uxp_client_rtt_seconds", Type: "gauge", Exporter: ExporterClient, Optional: true, Help: "Smoothed heartbeat round-trip time; absent until the first heartbeat answer."},
	{Name: "uxp_client_rtt_variance_seconds", Type: "gauge", Exporter: ExporterClient, Optional: true, Help: "Round-trip time variation; absent until the first heartbeat answer."},
	{Name: "uxp_client_loss_ratio", Type: "gauge", Labels: []string{"direction"}, Exporter: ExporterClient, Help: "Measured packet loss, by direction (in; out, reported by the peer in adaptive FEC mode only)."},
	{Name: "uxp_client_send_queue_bytes", Type: "gauge", Exporter: ExporterClient, Help: "Bytes the session holds for sending."},
	{Name: "uxp_client_drops_total", Type: "counter", Labels: []string{"reason"}, Exporter: ExporterClient, Help: "Datagrams dropped, by reason (as uxp_drops_total)."},
	{Name: "uxp_client_cookies_received_total", Type: "counter", Exporter: ExporterClient, Help: "Authentic cookie replies received."},
	{Name: "uxp_client_stateless_resets_received_total", Type: "counter", Exporter: ExporterClient, Help: "Authentic stateless resets received."},
	{Name: "uxp_client_rekeys_total", Type: "counter", Exporter: ExporterClient, Help: "Key rotations completed."},
	{Name: "uxp_client_fec_recovered_total", Type: "counter", Exporter: ExporterClient, Help: "Packets rebuilt from FEC parity."},
	{Name: "uxp_client_delivery_latency_seconds", Type: "histogram", Exporter: ExporterClient, Help: "Message delivery latency of sampled sent messages, estimated with the heartbeat RTT."},

	{Name: "uxp_dialer_sessions", Type: "gauge", Exporter: ExporterDialer, Help: "Live sessions of the Dialer."},
	{Name: "uxp_dialer_sessions_closed_total", Type: "counter", Labels: []string{"reason"}, Exporter: ExporterDialer, Help: "Sessions ended, by close reason (uxp.CloseReasons)."},
	{Name: "uxp_dialer_bytes_total", Type: "counter", Labels: []string{"direction"}, Exporter: ExporterDialer, Help: "UDP payload bytes over all sessions, by direction (sent, received)."},
	{Name: "uxp_dialer_packets_total", Type: "counter", Labels: []string{"direction"}, Exporter: ExporterDialer, Help: "Authenticated datagrams over all sessions, by direction (sent, received)."},
	{Name: "uxp_dialer_messages_total", Type: "counter", Labels: []string{"direction"}, Exporter: ExporterDialer, Help: "Messages over all sessions, by direction (sent, received)."},
	{Name: "uxp_dialer_retransmissions_total", Type: "counter", Exporter: ExporterDialer, Help: "Reliable data segments sent more than once, over all sessions."},
	{Name: "uxp_dialer_rtt_seconds", Type: "histogram", Exporter: ExporterDialer, Help: "Smoothed heartbeat round-trip times of the live sessions that have one, one sample per session."},
	{Name: "uxp_dialer_drops_total", Type: "counter", Labels: []string{"reason"}, Exporter: ExporterDialer, Help: "Datagrams dropped before they reached a session, by reason (as uxp_drops_total)."},
	{Name: "uxp_dialer_cookies_received_total", Type: "counter", Exporter: ExporterDialer, Help: "Authentic cookie replies received."},
	{Name: "uxp_dialer_stateless_resets_received_total", Type: "counter", Exporter: ExporterDialer, Help: "Authentic stateless resets received."},
}

func init() {
	// A Metric without an Exporter belongs to the server exporter; filling
	// it in here keeps the table short.
	for i := range Metrics {
		if Metrics[i].Exporter == "" {
			Metrics[i].Exporter = ExporterServer
		}
	}
}

// Collector is a prometheus.Collector reading a Server, a Client or a
// Dialer at scrape time. It is safe for concurrent scrapes.
type Collector struct {
	kind    string // ExporterServer, ExporterClient or ExporterDialer
	opts    Options
	descs   map[string]*prometheus.Desc
	collect func(e *emitter)

	// sticky holds the sessions that have per-session series
	// (Options.PerSession), server exporters only.
	mu     sync.Mutex
	sticky stickySet
}

// NewCollector returns a collector for a Server. opts may be nil.
func NewCollector(src Source, opts *Options) *Collector {
	c := newCollector(ExporterServer, opts)
	c.collect = func(e *emitter) { c.collectServer(e, src) }
	return c
}

// NewClientCollector returns a collector for a Client's session: the
// uxp_client_* families. opts may be nil; PerSession and MaxSessions do
// not apply.
func NewClientCollector(src ClientSource, opts *Options) *Collector {
	c := newCollector(ExporterClient, opts)
	c.collect = func(e *emitter) { collectClient(e, src.Stats()) }
	return c
}

// NewDialerCollector returns a collector for a Dialer: the uxp_dialer_*
// families, totals over its sessions. opts may be nil; PerSession and
// MaxSessions do not apply.
func NewDialerCollector(src DialerSource, opts *Options) *Collector {
	c := newCollector(ExporterDialer, opts)
	c.collect = func(e *emitter) { collectDialer(e, src.Stats()) }
	return c
}

func newCollector(kind string, opts *Options) *Collector {
	c := &Collector{kind: kind, descs: make(map[string]*prometheus.Desc)}
	if opts != nil {
		c.opts = *opts
		c.opts.ConstLabels = nil
		if len(opts.ConstLabels) > 0 {
			c.opts.ConstLabels = make(map[string]string, len(opts.ConstLabels))
			for k, v := range opts.ConstLabels {
				c.opts.ConstLabels[k] = v
			}
		}
	}
	for _, m := range c.families() {
		c.descs[m.Name] = prometheus.NewDesc(m.Name, m.Help, m.Labels, c.opts.ConstLabels)
	}
	return c
}

// families lists the Metrics this collector may produce.
func (c *Collector) families() []Metric {
	var out []Metric
	for _, m := range Metrics {
		if m.Exporter != c.kind && m.Exporter != ExporterAll {
			continue
		}
		if m.PerSession && !c.opts.PerSession {
			continue
		}
		out = append(out, m)
	}
	return out
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	e := emitter{ch: ch, descs: c.descs}
	e.gauge("uxp_build_info", 1, uxp.Version, runtime.Version())
	c.collect(&e)
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

// drops emits one counter per drop reason.
func (e *emitter) drops(name string, d uxp.DropStats) {
	for _, r := range dropReasons(d) {
		e.counter(name, r.n, r.reason)
	}
}

// closes emits one counter per close reason.
func (e *emitter) closes(name string, cc []uxp.CloseCount) {
	for _, r := range cc {
		e.counter(name, r.Count, r.Reason)
	}
}
