package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/metrics"
)

// The tunnel's periodic stats log (-statsinterval), kcptun's SNMP log in
// uxp's terms, and the -metrics endpoint of both sides.

// statsLoop calls f every interval until ctx ends. It returns at once
// when interval is not positive. The caller runs it on its own goroutine
// and joins it.
func statsLoop(ctx context.Context, interval time.Duration, f func()) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// logServerStats writes one "tunnel: stats" line with the server's totals.
func logServerStats(log *slog.Logger, st uxp.ServerStats) {
	log.Info("tunnel: stats",
		"sessions", st.Sessions,
		"bytes_sent", st.BytesSent, "bytes_received", st.BytesReceived,
		"packets_sent", st.PacketsSent, "packets_received", st.PacketsReceived,
		"retransmissions", st.Retransmissions,
		"fec_recovered", st.FEC.Recovered,
		"drops_auth", st.Drops.AuthFailed, "drops_replay", st.Drops.Replay,
		"send_queue_bytes", st.SendQueueBytes)
}

// logConnStats writes one "tunnel: stats" line for the client's session,
// or says that there is none.
func logConnStats(log *slog.Logger, c *uxp.Conn) {
	if c == nil {
		log.Info("tunnel: stats", "sessions", 0)
		return
	}
	st := c.Stats()
	log.Info("tunnel: stats",
		"sessions", 1,
		"rtt", st.RTT.Round(time.Microsecond),
		"bytes_sent", st.BytesSent, "bytes_received", st.BytesReceived,
		"packets_sent", st.PacketsSent, "packets_received", st.PacketsReceived,
		"retransmissions", st.Retransmissions,
		"loss_in", fmt.Sprintf("%.4f", st.LossIn), "loss_out", fmt.Sprintf("%.4f", st.LossOut),
		"fec_recovered", st.FEC.Recovered, "fec_parity", st.FEC.Parity,
		"send_queue_bytes", st.SendQueueBytes)
}

// serveMetrics serves h (a metrics.MetricsHandler: no debug page) on addr
// at /metrics. The returned stop shuts the HTTP server down and waits for
// it.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (bound net.Addr, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("-metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("tunnel: metrics server failed", "err", err)
		}
	})
	return ln.Addr(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		wg.Wait()
	}, nil
}

// clientMetrics exports the tunnel client's current uxp session through
// metrics.NewClientCollector; between sessions its counters read zero.
type clientMetrics struct{ c *tunnelClient }

// Stats implements metrics.ClientSource.
func (m clientMetrics) Stats() uxp.ConnStats {
	if conn := m.c.current(); conn != nil {
		return conn.Stats()
	}
	return uxp.ConnStats{}
}

// clientMetricsHandler serves the client exporter with the Go runtime and
// process collectors, as metrics.MetricsHandler does for a server.
func clientMetricsHandler(c *tunnelClient) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewClientCollector(clientMetrics{c}, nil))
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
