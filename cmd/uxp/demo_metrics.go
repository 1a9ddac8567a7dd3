package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/uxp-go/uxp/metrics"
)

// serveMetrics starts the -metrics HTTP server for the demo's server, if
// asked. The returned stop function shuts it down; it is never nil.
func (d *demo) serveMetrics() (stop func(), err error) {
	if d.opts.metrics == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", d.opts.metrics)
	if err != nil {
		return nil, fmt.Errorf("-metrics: %w", err)
	}
	hs := &http.Server{
		Handler:           metrics.Handler(d.srv, &metrics.Options{PerSession: true}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(d.stderr, "metrics server: %v\n", err)
		}
	}()
	fmt.Fprintf(d.stderr, "metrics: http://%s/metrics  session table: http://%s/debug/uxp\n", ln.Addr(), ln.Addr())
	if d.opts.onMetrics != nil {
		d.opts.onMetrics(ln.Addr())
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		<-done
	}, nil
}

// holdOpen keeps the sessions open after the traffic for -hold, or until
// ctx ends.
func (d *demo) holdOpen(ctx context.Context) {
	if d.opts.hold <= 0 || ctx.Err() != nil {
		return
	}
	fmt.Fprintf(d.stderr, "traffic done; holding the sessions open for %v\n", d.opts.hold)
	t := time.NewTimer(d.opts.hold)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
