package metrics

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"time"
)

// DebugPage is the JSON form of the debug page.
type DebugPage struct {
	Time     time.Time      `json:"time"`
	Server   ServerSummary  `json:"server"`
	Sessions []SessionState `json:"sessions"`
	// Truncated is set when Options.MaxSessions left sessions out.
	Truncated bool `json:"truncated,omitempty"`
}

// ServerSummary is the server-wide part of the debug page.
type ServerSummary struct {
	Sessions         int     `json:"sessions"`
	HalfOpen         int     `json:"half_open"`
	SessionsAccepted uint64  `json:"sessions_accepted"`
	BytesSent        uint64  `json:"bytes_sent"`
	BytesReceived    uint64  `json:"bytes_received"`
	MessagesSent     uint64  `json:"messages_sent"`
	MessagesReceived uint64  `json:"messages_received"`
	Retransmissions  uint64  `json:"retransmissions"`
	SendQueueBytes   int     `json:"send_queue_bytes"`
	Drops            uint64  `json:"drops"`
	FECRecovered     uint64  `json:"fec_recovered"`
	LatencyP50Ms     float64 `json:"latency_p50_ms"`
	LatencyP99Ms     float64 `json:"latency_p99_ms"`
}

// SessionState is one row of the debug page.
type SessionState struct {
	ID               uint32  `json:"id"`
	Remote           string  `json:"remote"`
	Cipher           string  `json:"cipher"`
	RTTMs            float64 `json:"rtt_ms"`
	RTTVarMs         float64 `json:"rtt_var_ms"`
	LossIn           float64 `json:"loss_in"`
	LossOut          float64 `json:"loss_out"`
	SendQueueBytes   int     `json:"send_queue_bytes"`
	BytesSent        uint64  `json:"bytes_sent"`
	BytesReceived    uint64  `json:"bytes_received"`
	MessagesSent     uint64  `json:"messages_sent"`
	MessagesReceived uint64  `json:"messages_received"`
	Retransmissions  uint64  `json:"retransmissions"`
	Rekeys           uint64  `json:"rekeys"`
	Migrations       uint64  `json:"migrations"`
	FECParity        int     `json:"fec_parity"`
	FECRecovered     uint64  `json:"fec_recovered"`
	Drops            uint64  `json:"drops"`
	LatencyP50Ms     float64 `json:"latency_p50_ms"`
	LatencyP99Ms     float64 `json:"latency_p99_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Snapshot reads src into the debug page's form. opts may be nil.
func Snapshot(src Source, opts *Options) DebugPage {
	st := src.Stats()
	p := DebugPage{
		Time: scrapeTime(),
		Server: ServerSummary{
			Sessions:         st.Sessions,
			HalfOpen:         st.HalfOpen,
			SessionsAccepted: st.SessionsAccepted,
			BytesSent:        st.BytesSent,
			BytesReceived:    st.BytesReceived,
			MessagesSent:     st.MessagesSent,
			MessagesReceived: st.MessagesReceived,
			Retransmissions:  st.Retransmissions,
			SendQueueBytes:   st.SendQueueBytes,
			Drops:            st.Drops.Total(),
			FECRecovered:     st.FEC.Recovered,
			LatencyP50Ms:     ms(st.Latency.Quantile(0.5)),
			LatencyP99Ms:     ms(st.Latency.Quantile(0.99)),
		},
		Sessions: []SessionState{},
	}
	maxN := opts.maxSessions()
	sessions := topSessions(readSessions(src), maxN)
	p.Truncated = len(sessions) == maxN && st.Sessions > maxN
	for _, s := range sessions {
		cs := &s.stats
		p.Sessions = append(p.Sessions, SessionState{
			ID:               s.id,
			Remote:           s.remote,
			Cipher:           cs.Cipher.String(),
			RTTMs:            ms(cs.RTT),
			RTTVarMs:         ms(cs.RTTVar),
			LossIn:           cs.LossIn,
			LossOut:          cs.LossOut,
			SendQueueBytes:   cs.SendQueueBytes,
			BytesSent:        cs.BytesSent,
			BytesReceived:    cs.BytesReceived,
			MessagesSent:     cs.MessagesSent,
			MessagesReceived: cs.MessagesReceived,
			Retransmissions:  cs.Retransmissions,
			Rekeys:           cs.Rekeys,
			Migrations:       cs.Migrations,
			FECParity:        cs.FEC.Parity,
			FECRecovered:     cs.FEC.Recovered,
			Drops:            cs.Drops.Total(),
			LatencyP50Ms:     ms(cs.Latency.Quantile(0.5)),
			LatencyP99Ms:     ms(cs.Latency.Quantile(0.99)),
		})
	}
	return p
}

// DebugHandler serves the debug page alone: an HTML table of live
// sessions that refreshes itself every two seconds, or JSON (a DebugPage)
// when the query has format=json. opts may be nil.
func DebugHandler(src Source, opts *Options) http.Handler {
	var o *Options
	if opts != nil {
		cp := *opts
		o = &cp
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := Snapshot(src, o)
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Query().Get("format") == "json" {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(p)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := debugTemplate.Execute(w, p); err != nil {
			// Headers are gone already; all we can do is stop writing.
			return
		}
	})
}

// si formats a count with an SI suffix: 950, 12.3k, 4.56M.
func si[T uint64 | int](v T) string {
	f := float64(v)
	switch {
	case f >= 1e9:
		return strconv.FormatFloat(f/1e9, 'f', 2, 64) + "G"
	case f >= 1e6:
		return strconv.FormatFloat(f/1e6, 'f', 2, 64) + "M"
	case f >= 1e4:
		return strconv.FormatFloat(f/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(f, 'f', 0, 64)
}

var debugTemplate = template.Must(template.New("debug").Funcs(template.FuncMap{
	"pct": func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" },
	"f1":  func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"si":  si[uint64],
	"sii": si[int],
}).Parse(debugHTML))

const debugHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="2">
<title>uxp sessions</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 20px; margin: 0 0 .3em; }
.sum span { display: inline-block; margin: 0 1.2em .4em 0; }
.sum b { font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; margin-top: .8em; }
th, td { padding: 3px 6px; border-bottom: 1px solid #ddd; text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; position: sticky; top: 0; }
td { white-space: nowrap; }
td.l, th.l { text-align: left; }
tr:hover td { background: #fafae8; }
.muted { color: #888; }
</style></head><body>
<h1>uxp: live sessions</h1>
<div class="muted">{{.Time.Format "2006-01-02 15:04:05 UTC"}} &middot; refreshes every 2 s &middot; <a href="?format=json">JSON</a> &middot; <a href="/metrics">Prometheus</a></div>
<div class="sum" id="summary">
<span>sessions <b>{{.Server.Sessions}}</b></span>
<span>half-open <b>{{.Server.HalfOpen}}</b></span>
<span>accepted <b>{{.Server.SessionsAccepted}}</b></span>
<span>messages in/out <b>{{.Server.MessagesReceived}}</b> / <b>{{.Server.MessagesSent}}</b></span>
<span>bytes in/out <b>{{si .Server.BytesReceived}}</b> / <b>{{si .Server.BytesSent}}</b></span>
<span>retransmissions <b>{{.Server.Retransmissions}}</b></span>
<span>send queue <b>{{sii .Server.SendQueueBytes}}</b> B</span>
<span>drops <b>{{.Server.Drops}}</b></span>
<span>FEC recovered <b>{{.Server.FECRecovered}}</b></span>
<span>latency p50/p99 <b>{{f1 .Server.LatencyP50Ms}}</b> / <b>{{f1 .Server.LatencyP99Ms}}</b> ms</span>
</div>
<table id="sessions">
<thead><tr><th>session</th><th class="l">remote</th><th class="l">cipher</th><th>RTT ms</th><th>RTT var ms</th>
<th>loss in</th><th>loss out</th><th>queue B</th><th>msgs in</th><th>msgs out</th><th>bytes in</th><th>bytes out</th>
<th>retrans</th><th>rekeys</th><th>FEC parity</th><th>FEC rec</th><th>drops</th><th>lat p50 ms</th><th>lat p99 ms</th></tr></thead>
<tbody>
{{range .Sessions}}<tr><td>{{.ID}}</td><td class="l">{{.Remote}}</td><td class="l">{{.Cipher}}</td><td>{{f1 .RTTMs}}</td><td>{{f1 .RTTVarMs}}</td>
<td>{{pct .LossIn}}</td><td>{{pct .LossOut}}</td><td>{{sii .SendQueueBytes}}</td><td>{{.MessagesReceived}}</td><td>{{.MessagesSent}}</td>
<td>{{si .BytesReceived}}</td><td>{{si .BytesSent}}</td><td>{{.Retransmissions}}</td><td>{{.Rekeys}}</td><td>{{.FECParity}}</td><td>{{.FECRecovered}}</td>
<td>{{.Drops}}</td><td>{{f1 .LatencyP50Ms}}</td><td>{{f1 .LatencyP99Ms}}</td></tr>
{{else}}<tr><td colspan="19" class="l muted">no live sessions</td></tr>
{{end}}</tbody></table>
{{if .Truncated}}<p class="muted">Only the busiest sessions are listed (Options.MaxSessions).</p>{{end}}
</body></html>
`
