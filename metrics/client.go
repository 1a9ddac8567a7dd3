package metrics

import "github.com/uxp-go/uxp"

// collectClient emits a Client's families from its session's stats.
func collectClient(e *emitter, st uxp.ConnStats) {
	e.counter("uxp_client_bytes_total", st.BytesSent, "sent")
	e.counter("uxp_client_bytes_total", st.BytesReceived, "received")
	e.counter("uxp_client_packets_total", st.PacketsSent, "sent")
	e.counter("uxp_client_packets_total", st.PacketsReceived, "received")
	e.counter("uxp_client_messages_total", st.MessagesSent, "sent")
	e.counter("uxp_client_messages_total", st.MessagesReceived, "received")
	e.counter("uxp_client_retransmissions_total", st.Retransmissions)
	if st.RTT > 0 { // zero: no heartbeat answer yet (see sessionMetrics)
		e.gauge("uxp_client_rtt_seconds", st.RTT.Seconds())
		e.gauge("uxp_client_rtt_variance_seconds", st.RTTVar.Seconds())
	}
	e.gauge("uxp_client_loss_ratio", st.LossIn, "in")
	e.gauge("uxp_client_loss_ratio", st.LossOut, "out")
	e.gauge("uxp_client_send_queue_bytes", float64(st.SendQueueBytes))
	e.drops("uxp_client_drops_total", st.Drops)
	e.counter("uxp_client_cookies_received_total", st.Handshake.CookiesReceived)
	e.counter("uxp_client_stateless_resets_received_total", st.Handshake.ResetsReceived)
	e.counter("uxp_client_rekeys_total", st.Rekeys)
	e.counter("uxp_client_fec_recovered_total", st.FEC.Recovered)
	e.histogram("uxp_client_delivery_latency_seconds", st.Latency)
}

// collectDialer emits a Dialer's families.
func collectDialer(e *emitter, st uxp.DialerStats) {
	e.gauge("uxp_dialer_sessions", float64(st.Sessions))
	e.closes("uxp_dialer_sessions_closed_total", st.SessionsClosed)
	e.counter("uxp_dialer_bytes_total", st.BytesSent, "sent")
	e.counter("uxp_dialer_bytes_total", st.BytesReceived, "received")
	e.counter("uxp_dialer_packets_total", st.PacketsSent, "sent")
	e.counter("uxp_dialer_packets_total", st.PacketsReceived, "received")
	e.counter("uxp_dialer_messages_total", st.MessagesSent, "sent")
	e.counter("uxp_dialer_messages_total", st.MessagesReceived, "received")
	e.counter("uxp_dialer_retransmissions_total", st.Retransmissions)
	e.histogram("uxp_dialer_rtt_seconds", st.RTT)
	e.drops("uxp_dialer_drops_total", st.Drops)
	e.counter("uxp_dialer_cookies_received_total", st.Handshake.CookiesReceived)
	e.counter("uxp_dialer_stateless_resets_received_total", st.Handshake.ResetsReceived)
}
