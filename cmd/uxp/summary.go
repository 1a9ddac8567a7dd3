package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/netsim"
)

// report is what a demo run measured, gathered after shutdown.
type report struct {
	fec     fecTotals
	opts    demoOptions
	elapsed time.Duration
	stopped string // why the run ended early: "", "interrupted", "timed out ..."

	connected, complete  int
	sent, recv           uint64 // messages, all clients
	bytesSent, bytesRecv uint64 // message bytes, headers included
	wouldBlock           uint64 // client writes retried
	echoRetries          uint64 // server echo writes retried
	rtt                  latencySummary
	handshake            latencySummary

	cc                           uxp.CongestionStats // clients' median (congestionSummary)
	clientRetrans, serverRetrans uint64
	clientDrops, serverDrops     uint64
	drops                        uxp.DropStats // server and clients
	server                       uxp.ServerStats
	netsim                       netsim.Stats // every impaired socket

	failures []string // one per failed client, in client order
}

func (d *demo) report(elapsed time.Duration, stopped string) *report {
	r := &report{opts: d.opts, elapsed: elapsed, stopped: stopped, echoRetries: d.echo.retries.Load()}
	r.rtt = d.rtts.summary()
	var hs []time.Duration
	var cc []uxp.CongestionStats
	for _, dc := range d.clients {
		r.sent += dc.sent.Load()
		r.recv += dc.recv.Load()
		r.bytesSent += dc.bytesSent.Load()
		r.bytesRecv += dc.bytesRecv.Load()
		r.wouldBlock += dc.wouldBlock.Load()
		addNetsim(&r.netsim, dc.pc.(*netsim.Conn).Stats())
		if dc.ready {
			r.connected++
			hs = append(hs, dc.handshake)
			st := dc.cl.Conn().Stats()
			r.clientRetrans += st.Retransmissions
			cc = append(cc, st.Congestion)
			r.fec.add(st.FEC)
			r.clientDrops += st.Drops.Total()
			addDrops(&r.drops, st.Drops)
		}
		switch err := dc.err(); {
		case err != nil:
			r.failures = append(r.failures, fmt.Sprintf("client %d: %v", dc.id, err))
		case dc.complete():
			r.complete++
		default:
			r.failures = append(r.failures, fmt.Sprintf("client %d: incomplete: %d of %d echoes (%d sent)", dc.id, dc.recv.Load(), dc.messages, dc.sent.Load()))
		}
	}
	r.handshake = summarize(hs)
	r.cc = congestionSummary(cc)
	r.server = d.srv.Stats()
	r.serverRetrans = r.server.Retransmissions
	r.fec.add(r.server.FEC)
	r.serverDrops = r.server.Drops.Total()
	addDrops(&r.drops, r.server.Drops)
	addNetsim(&r.netsim, d.srvPC.Stats())
	return r
}

func addDrops(dst *uxp.DropStats, s uxp.DropStats) {
	dst.Malformed += s.Malformed
	dst.AuthFailed += s.AuthFailed
	dst.Replay += s.Replay
	dst.UnknownSession += s.UnknownSession
	dst.Overload += s.Overload
}

func addNetsim(dst *netsim.Stats, s netsim.Stats) {
	dst.Sent += s.Sent
	dst.Delivered += s.Delivered
	dst.Dropped += s.Dropped
	dst.Duplicated += s.Duplicated
	dst.Reordered += s.Reordered
}

// ok reports whether every message of every client came back intact, once
// and in order.
func (r *report) ok() bool {
	return r.stopped == "" && len(r.failures) == 0 && r.complete == r.opts.clients
}

// print writes the summary table.
func (r *report) print(w io.Writer) {
	o := &r.opts
	size := "mixed 16..2000 B payload"
	if o.size > 0 {
		size = fmt.Sprintf("%d B payload", o.size)
	}
	pace := "unpaced"
	if o.rate > 0 {
		pace = fmt.Sprintf("%.4g/s per client", o.rate)
	}
	perDir := fmt.Sprintf("loss %.3g, dup %.3g, reorder %.3g, delay %v, jitter %v each way", o.loss, o.dup, o.reorder, o.delay, o.jitter)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	fmt.Fprintln(tw, "uxp demo summary")
	row("link", "%s (seed %d)", perDir, o.seed)
	row("cipher", "%s", o.cipher)
	row("clients", "%d (%d connected, %d complete)", o.clients, r.connected, r.complete)
	row("messages", "sent %d, received %d of %d (%s, %s)", r.sent, r.recv, uint64(o.clients)*uint64(o.messages), size, pace)
	row("bytes", "sent %d, received %d (headers included)", r.bytesSent, r.bytesRecv)
	row("rtt", "p50 %v  p99 %v  max %v  (%d samples)", roundDuration(r.rtt.p50), roundDuration(r.rtt.p99), roundDuration(r.rtt.max), r.rtt.n)
	row("handshake", "p50 %v  max %v", roundDuration(r.handshake.p50), roundDuration(r.handshake.max))
	row("retransmissions", "%d (clients %d, server %d)", r.clientRetrans+r.serverRetrans, r.clientRetrans, r.serverRetrans)
	fecMode := o.fec
	if fecMode == "" {
		fecMode = "off"
	}
	row("fec", "%s: recovered %d packets, %d groups expired unrecovered, shards sent %d data + %d parity", fecMode, r.fec.Recovered, r.fec.ExpiredGroups, r.fec.DataShardsSent, r.fec.ParityShardsSent)
	if r.connected > 0 {
		row("congestion", "clients' median at the end: %s", congestionDetail(r.cc))
	}
	row("would-block retries", "clients %d, server echoes %d", r.wouldBlock, r.echoRetries)
	row("drops", "%d (clients %d, server %d)", r.drops.Total(), r.clientDrops, r.serverDrops)
	row("  malformed", "%d", r.drops.Malformed)
	row("  auth_failed", "%d", r.drops.AuthFailed)
	row("  replay", "%d", r.drops.Replay)
	row("  unknown_session", "%d", r.drops.UnknownSession)
	row("  overload", "%d", r.drops.Overload)
	row("impairment", "packets sent %d, dropped %d, duplicated %d, reordered %d, delivered %d", r.netsim.Sent, r.netsim.Dropped, r.netsim.Duplicated, r.netsim.Reordered, r.netsim.Delivered)
	row("server", "sessions accepted %d, handshakes %d, packets sent %d, received %d", r.server.SessionsAccepted, r.server.HandshakesConfirmed, r.server.PacketsSent, r.server.PacketsReceived)
	row("duration", "%v", roundDuration(r.elapsed))
	result := "PASS: every message arrived intact, once and in order"
	if !r.ok() {
		result = "FAIL"
		if r.stopped != "" {
			result += " (" + r.stopped + ")"
		}
	}
	row("result", "%s", result)
	tw.Flush()
	if len(r.failures) > 0 {
		fmt.Fprintf(w, "\nfailures (%d):\n", len(r.failures))
		const maxShown = 20
		for i, f := range r.failures {
			if i == maxShown {
				fmt.Fprintf(w, "  ... and %d more\n", len(r.failures)-maxShown)
				break
			}
			fmt.Fprintf(w, "  %s\n", strings.TrimSpace(f))
		}
	}
}

// fecTotals sums FEC counters over both sides.
type fecTotals struct {
	Recovered, ExpiredGroups, DataShardsSent, ParityShardsSent uint64
}

func (t *fecTotals) add(s uxp.FECStats) {
	t.Recovered += s.Recovered
	t.ExpiredGroups += s.ExpiredGroups
	t.DataShardsSent += s.DataShardsSent
	t.ParityShardsSent += s.ParityShardsSent
}
