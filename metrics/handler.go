package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsHandler serves src's Prometheus text exposition on any path,
// from a registry of its own with the server collector and the Go runtime
// and process collectors. opts may be nil. It does not serve the debug
// page, so it can be exposed where the debug page must not be.
func MetricsHandler(src Source, opts *Options) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src, opts))
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Handler serves both of src's pages on one listener: Prometheus text
// exposition at /metrics (MetricsHandler) and the debug page at
// /debug/uxp (DebugHandler: HTML; JSON with ?format=json). Any other path
// is 404. opts may be nil. Mount it at the root of a mux or server.
//
// The debug page lists every client's address: where /metrics is scraped
// from outside, serve MetricsHandler there and DebugHandler on an internal
// address instead.
func Handler(src Source, opts *Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", MetricsHandler(src, opts))
	mux.Handle("GET /debug/uxp", DebugHandler(src, opts))
	return mux
}

// scrapeTime is how old the data on a page may be; Collect is synchronous,
// so this only labels the debug page.
func scrapeTime() time.Time { return time.Now().UTC() }
