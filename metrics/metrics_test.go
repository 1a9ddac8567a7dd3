package metrics

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp"
	ucrypto "github.com/uxp-go/uxp/crypto"
)

// echoServer echoes every message.
type echoServer struct{ uxp.NopServerHandler }

type echoConn struct{ uxp.NopHandler }

func (echoServer) OnNewConnComing(c *uxp.Conn)            { c.SetHandler(echoConn{}) }
func (echoConn) OnNewDataComing(c *uxp.Conn, data []byte) { _, _ = c.Write(data) }

type countConn struct {
	uxp.NopHandler
	n atomic.Int64
}

func (h *countConn) OnNewDataComing(*uxp.Conn, []byte) { h.n.Add(1) }

// liveServer starts an echo server on loopback with clients sessions that
// have each exchanged msgs messages.
func liveServer(t testing.TB, clients, msgs int) *uxp.Server {
	t.Helper()
	kp, err := uxp.GenerateKey()
	require.NoError(t, err)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	srv, err := uxp.NewServer(pc, echoServer{}, &uxp.Config{PrivateKey: kp.Private, HeartbeatInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range clients {
		h := &countConn{}
		cli, err := uxp.Dial(ctx, srv.Addr().String(), h, &uxp.Config{ServerPublicKey: kp.Public, HeartbeatInterval: 50 * time.Millisecond})
		require.NoError(t, err)
		t.Cleanup(func() { cli.Close() })
		for i := range msgs {
			_, err := cli.Conn().Write([]byte(strings.Repeat("x", 10+i)))
			require.NoError(t, err)
		}
		require.Eventually(t, func() bool { return h.n.Load() == int64(msgs) }, 10*time.Second, 5*time.Millisecond)
	}
	// Two heartbeats give the server its own RTT samples.
	require.Eventually(t, func() bool {
		ok := true
		srv.RangeConns(func(c *uxp.Conn) bool { ok = ok && c.Stats().RTT > 0; return true })
		return ok
	}, 10*time.Second, 10*time.Millisecond)
	// A client has read every echo before the server has the ACKs of the
	// last ones (the client may hold an ACK for its ACK delay): the
	// latency samples are taken then.
	require.Eventually(t, func() bool {
		return srv.Stats().Latency.Count == uint64(clients*msgs)
	}, 10*time.Second, 5*time.Millisecond, "every echo acknowledged")
	return srv
}

func get(t testing.TB, h http.Handler, url string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	return rec
}

func parseExposition(t testing.TB, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	return fams
}

// familiesOf lists the Metrics an exporter of kind produces.
func familiesOf(kind string, perSession bool) []Metric {
	var out []Metric
	for _, m := range Metrics {
		if (m.Exporter == kind || m.Exporter == ExporterAll) && (perSession || !m.PerSession) {
			out = append(out, m)
		}
	}
	return out
}

// checkFamilies asserts that fams holds exactly the documented families
// of one exporter (optional ones may be missing), each with its type and
// labels (constLabels added).
func checkFamilies(t testing.TB, fams map[string]*dto.MetricFamily, want []Metric, constLabels ...string) {
	t.Helper()
	names := map[string]bool{}
	for _, m := range want {
		names[m.Name] = true
		f, ok := fams[m.Name]
		if !ok {
			require.True(t, m.Optional, "metric %s missing", m.Name)
			continue
		}
		require.Equal(t, m.Type, strings.ToLower(f.GetType().String()), m.Name)
		require.Equal(t, m.Help, f.GetHelp(), m.Name)
		for _, mm := range f.GetMetric() {
			var got []string
			for _, lp := range mm.GetLabel() {
				got = append(got, lp.GetName())
			}
			want := append(slices.Clone(m.Labels), constLabels...)
			slices.Sort(want)
			require.Equal(t, want, got, "labels of %s (sorted in the exposition)", m.Name)
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "uxp_") {
			require.True(t, names[name], "undocumented family %s", name)
		}
	}
}

func counterOf(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, name)
	for _, m := range f.GetMetric() {
		if labelsMatch(m, labels...) {
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("%s%v: no series", name, labels)
	return 0
}

// labelsMatch: labels are name, value pairs m must carry.
func labelsMatch(m *dto.Metric, labels ...string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestPrometheusExposition: the /metrics output parses with expfmt, holds
// every documented server family with live values, passes promlint, and
// gives the handshake, RTT and build series their documented meaning.
func TestPrometheusExposition(t *testing.T) {
	srv := liveServer(t, 2, 20)
	for _, perSession := range []bool{false, true} {
		rec := get(t, Handler(srv, &Options{PerSession: perSession}), "/metrics")
		require.Equal(t, http.StatusOK, rec.Code)
		fams := parseExposition(t, rec.Body.String())
		checkFamilies(t, fams, familiesOf(ExporterServer, perSession))
		for _, m := range Metrics {
			if m.PerSession && !perSession {
				require.NotContains(t, fams, m.Name, "%s without PerSession", m.Name)
			}
		}
		val := func(name string) float64 { return fams[name].GetMetric()[0].GetCounter().GetValue() }
		require.Equal(t, 2.0, fams["uxp_sessions"].GetMetric()[0].GetGauge().GetValue())
		require.Equal(t, 40.0, val("uxp_messages_received_total"))
		require.Equal(t, 40.0, val("uxp_messages_sent_total"))
		require.Positive(t, val("uxp_bytes_received_total"))
		lat := fams["uxp_delivery_latency_seconds"].GetMetric()[0].GetHistogram()
		require.EqualValues(t, 40, lat.GetSampleCount(), "every echo sampled")
		require.Len(t, lat.GetBucket(), len(uxp.LatencyBounds())+1, "bounds and +Inf")
		require.Len(t, fams["uxp_drops_total"].GetMetric(), 7)

		// Two clients: two responses, two completed handshakes, each
		// timed; two sessions with an RTT.
		require.Equal(t, 2.0, val("uxp_handshake_responses_total"))
		require.Equal(t, 2.0, val("uxp_handshakes_completed_total"))
		hs := fams["uxp_handshake_duration_seconds"].GetMetric()[0].GetHistogram()
		require.EqualValues(t, 2, hs.GetSampleCount())
		require.Positive(t, hs.GetSampleSum())
		rtt := fams["uxp_rtt_seconds"].GetMetric()[0].GetHistogram()
		require.EqualValues(t, 2, rtt.GetSampleCount(), "one sample per live session")
		require.Positive(t, rtt.GetSampleSum())
		closed := fams["uxp_sessions_closed_total"].GetMetric()
		require.Len(t, closed, len(uxp.CloseReasons()), "one series per close reason, zeros included")
		for _, m := range closed {
			require.Zero(t, m.GetCounter().GetValue())
		}
		bi := fams["uxp_build_info"].GetMetric()
		require.Len(t, bi, 1)
		require.Equal(t, 1.0, bi[0].GetGauge().GetValue())
		require.True(t, labelsMatch(bi[0], "version", uxp.Version, "goversion", runtime.Version()))

		if perSession {
			rtts := fams["uxp_session_rtt_seconds"].GetMetric()
			require.Len(t, rtts, 2)
			for _, m := range rtts {
				require.Positive(t, m.GetGauge().GetValue())
			}
		}
	}
	// Naming, units and help follow Prometheus' conventions.
	problems, err := testutil.CollectAndLint(NewCollector(srv, &Options{PerSession: true}))
	require.NoError(t, err)
	require.Empty(t, problems)
}

// fakeClient stands in for a Client.
type fakeClient struct{ st uxp.ConnStats }

func (f *fakeClient) Stats() uxp.ConnStats { return f.st }

// TestClientDialerExposition: the client and Dialer exporters produce
// their documented families from live sessions, pass promlint, and leave
// out the RTT series until there is an RTT.
func TestClientDialerExposition(t *testing.T) {
	kp, err := uxp.GenerateKey()
	require.NoError(t, err)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg := &uxp.Config{PrivateKey: kp.Private, HeartbeatInterval: 50 * time.Millisecond}
	srv, err := uxp.NewServer(pc, echoServer{}, cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { srv.Close() })
	ccfg := &uxp.Config{ServerPublicKey: kp.Public, HeartbeatInterval: 50 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	h := &countConn{}
	cli, err := uxp.Dial(ctx, srv.Addr().String(), h, ccfg)
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	dpc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	d, err := uxp.NewDialer(dpc, ccfg)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	dh := &countConn{}
	dc, err := d.Dial(ctx, srv.Addr(), dh)
	require.NoError(t, err)
	for i := range 5 {
		_, err := cli.Conn().Write([]byte(strings.Repeat("c", 10+i)))
		require.NoError(t, err)
		_, err = dc.Write([]byte(strings.Repeat("d", 10+i)))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		return h.n.Load() == 5 && dh.n.Load() == 5 && cli.Stats().RTT > 0 && dc.Stats().RTT > 0
	}, 10*time.Second, 5*time.Millisecond)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewClientCollector(cli, &Options{ConstLabels: map[string]string{"role": "client"}}))
	reg.MustRegister(NewDialerCollector(d, &Options{ConstLabels: map[string]string{"role": "dialer"}}))
	fams := gather(t, reg)
	client := familiesOf(ExporterClient, false)
	dialer := familiesOf(ExporterDialer, false)
	checkFamilies(t, fams, append(client, dialer...), "role")
	require.NotContains(t, fams, "uxp_sessions", "no server families")
	require.Len(t, fams["uxp_build_info"].GetMetric(), 2, "one per exporter")
	require.Contains(t, fams, "uxp_client_rtt_seconds", "RTT once sampled")
	require.Equal(t, 5.0, counterOf(t, fams, "uxp_client_messages_total", "direction", "received"))
	require.Equal(t, 5.0, counterOf(t, fams, "uxp_dialer_messages_total", "direction", "received"))
	require.Equal(t, 1.0, fams["uxp_dialer_sessions"].GetMetric()[0].GetGauge().GetValue())
	require.EqualValues(t, 1, fams["uxp_dialer_rtt_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())
	for _, c := range []prometheus.Collector{NewClientCollector(cli, nil), NewDialerCollector(d, nil)} {
		problems, err := testutil.CollectAndLint(c)
		require.NoError(t, err)
		require.Empty(t, problems)
	}

	// Before the first heartbeat answer: no RTT series at all, rather
	// than a misleading 0.
	fresh := prometheus.NewPedanticRegistry()
	fresh.MustRegister(NewClientCollector(&fakeClient{}, nil))
	fams = gather(t, fresh)
	require.NotContains(t, fams, "uxp_client_rtt_seconds")
	require.NotContains(t, fams, "uxp_client_rtt_variance_seconds")
	require.Contains(t, fams, "uxp_client_bytes_total")
}

func gather(t testing.TB, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, f := range mfs {
		out[f.GetName()] = f
	}
	return out
}

// TestTwoServersOneRegistry: a second server's collector in one registry
// is refused without ConstLabels (the documented failure), and accepted
// with them, each server's series telling its own counts.
func TestTwoServersOneRegistry(t *testing.T) {
	a := liveServer(t, 1, 3)
	b := liveServer(t, 2, 4)

	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(NewCollector(a, nil)))
	err := reg.Register(NewCollector(b, nil))
	require.Error(t, err, "same series twice")
	err = prometheus.NewRegistry().Register(NewCollector(b, &Options{ConstLabels: map[string]string{"reason": "x"}}))
	require.Error(t, err, "a const label that is also a family's label")

	reg = prometheus.NewPedanticRegistry()
	for name, srv := range map[string]*uxp.Server{"a": a, "b": b} {
		require.NoError(t, reg.Register(NewCollector(srv, &Options{PerSession: true, ConstLabels: map[string]string{"server": name}})))
	}
	fams := gather(t, reg)
	checkFamilies(t, fams, familiesOf(ExporterServer, true), "server")
	require.Equal(t, 3.0, counterOf(t, fams, "uxp_messages_received_total", "server", "a"))
	require.Equal(t, 8.0, counterOf(t, fams, "uxp_messages_received_total", "server", "b"))
	require.Len(t, fams["uxp_build_info"].GetMetric(), 2)
	require.Len(t, fams["uxp_session_send_queue_bytes"].GetMetric(), 3)

	// The text exposition of both parses too.
	var buf strings.Builder
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range mfs {
		_, err := expfmt.MetricFamilyToText(&buf, f)
		require.NoError(t, err)
	}
	parsed := parseExposition(t, buf.String())
	require.Len(t, parsed["uxp_sessions"].GetMetric(), 2)
}

// TestReadmeListsMetrics keeps the README's Observability table and
// Metrics identical, row for row.
func TestReadmeListsMetrics(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	readme := string(b)
	i := strings.Index(readme, "## Observability")
	require.GreaterOrEqual(t, i, 0, "README has an Observability section")
	section := readme[i+3:]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	documented := regexp.MustCompile("(?m)^\\| `uxp_[a-z_]+`.*$").FindAllString(section, -1)
	var want []string
	for _, m := range Metrics {
		labels := "—"
		if len(m.Labels) > 0 {
			labels = strings.Join(m.Labels, ", ")
		}
		want = append(want, fmt.Sprintf("| `%s` | %s | %s | %s | %s |", m.Name, m.Exporter, m.Type, labels, m.Help))
	}
	require.Equal(t, want, documented, "README table vs metrics.Metrics (name, exporter, type, labels, help, in order)")
}

func TestDebugPage(t *testing.T) {
	srv := liveServer(t, 3, 5)
	h := Handler(srv, nil)

	rec := get(t, h, "/debug/uxp?format=json")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var p DebugPage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	require.Equal(t, 3, p.Server.Sessions)
	require.Len(t, p.Sessions, 3)
	for _, s := range p.Sessions {
		require.NotZero(t, s.ID)
		require.Positive(t, s.RTTMs)
		// Negotiated: AES-256-GCM on CPUs with AES instructions.
		want := uxp.ChaCha20Poly1305
		if ucrypto.HasAESHardware() {
			want = uxp.AES256GCM
		}
		require.Equal(t, want.String(), s.Cipher)
		require.EqualValues(t, 5, s.MessagesReceived)
		require.Contains(t, s.Remote, "127.0.0.1:")
	}
	require.True(t, slices.IsSortedFunc(p.Sessions, func(a, b SessionState) int { return cmp.Compare(a.ID, b.ID) }))

	rec = get(t, h, "/debug/uxp")
	require.Equal(t, http.StatusOK, rec.Code)
	html := rec.Body.String()
	require.Contains(t, html, `<table id="sessions">`)
	require.Equal(t, 3, strings.Count(html, "<td class=\"l\">127.0.0.1:"), "one row per session")

	limited := get(t, Handler(srv, &Options{MaxSessions: 2}), "/debug/uxp?format=json")
	require.NoError(t, json.Unmarshal(limited.Body.Bytes(), &p))
	require.Len(t, p.Sessions, 2)
	require.True(t, p.Truncated)

	require.Equal(t, http.StatusNotFound, get(t, h, "/other").Code)
}

// TestStickySelection: the sessions with per-session series stay chosen
// until they end, whatever the traffic does; a free place goes to the
// busiest new session, and there are never more than the bound.
func TestStickySelection(t *testing.T) {
	sess := func(id uint32, traffic uint64) session {
		return session{id: id, stats: uxp.ConnStats{BytesSent: traffic}}
	}
	ids := func(ss []session) []uint32 {
		var out []uint32
		for _, s := range ss {
			out = append(out, s.id)
		}
		return out
	}
	steps := []struct {
		name string
		live []session
		want []uint32
	}{
		{"busiest two of three", []session{sess(1, 10), sess(2, 30), sess(3, 20)}, []uint32{2, 3}},
		{"traffic shifts: no change", []session{sess(1, 1000), sess(2, 31), sess(3, 21)}, []uint32{2, 3}},
		{"a new busier session waits", []session{sess(1, 1000), sess(2, 31), sess(3, 21), sess(4, 5000)}, []uint32{2, 3}},
		{"a chosen one ends: busiest waiting one moves in", []session{sess(1, 1000), sess(3, 22), sess(4, 5000)}, []uint32{3, 4}},
		{"both end", []session{sess(1, 1000), sess(5, 1)}, []uint32{1, 5}},
		{"ties by session ID", []session{sess(9, 7), sess(8, 7), sess(7, 7)}, []uint32{7, 8}},
	}
	var s stickySet
	for _, st := range steps {
		got := s.choose(slices.Clone(st.live), 2)
		require.Equal(t, st.want, ids(got), st.name)
		require.LessOrEqual(t, len(s.ids), 2, st.name)
	}
}

// TestPerSessionSeriesStable: over a live server, the sessions that have
// series do not change between scrapes while the traffic does, and the
// set is bounded by MaxSessions.
func TestPerSessionSeriesStable(t *testing.T) {
	srv := liveServer(t, 3, 2)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(srv, &Options{PerSession: true, MaxSessions: 2}))
	scraped := func() []string {
		var out []string
		for _, m := range gather(t, reg)["uxp_session_send_queue_bytes"].GetMetric() {
			out = append(out, m.GetLabel()[0].GetValue())
		}
		slices.Sort(out)
		return out
	}
	first := scraped()
	require.Len(t, first, 2)

	// Make the session left out the busiest by far.
	var left *uxp.Conn
	srv.RangeConns(func(c *uxp.Conn) bool {
		if !slices.Contains(first, strconv.FormatUint(uint64(c.ID()), 10)) {
			left = c
		}
		return true
	})
	require.NotNil(t, left)
	for range 20 {
		_, err := left.Write(make([]byte, 1000))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return left.Stats().BytesSent > 20000 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, first, scraped(), "no churn when traffic shifts")

	// A chosen session ends: the busiest other one takes its place.
	var gone *uxp.Conn
	srv.RangeConns(func(c *uxp.Conn) bool {
		if c != left {
			gone = c
			return false
		}
		return true
	})
	require.NoError(t, gone.Close())
	<-gone.Done()
	want := []string{
		strconv.FormatUint(uint64(left.ID()), 10),
		slices.DeleteFunc(slices.Clone(first), func(s string) bool { return s == strconv.FormatUint(uint64(gone.ID()), 10) })[0],
	}
	slices.Sort(want)
	require.Eventually(t, func() bool { return slices.Equal(want, scraped()) }, 10*time.Second, 10*time.Millisecond)
}

// TestSessionsClosedAfterKick: a server closing a session counts it as
// "normal" on both sides; the server shutting down counts the rest as
// "shutdown" at the peer and at the server.
func TestSessionsClosedAfterKick(t *testing.T) {
	kp, err := uxp.GenerateKey()
	require.NoError(t, err)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	srv, err := uxp.NewServer(pc, echoServer{}, &uxp.Config{PrivateKey: kp.Private})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { srv.Close() })
	dpc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	d, err := uxp.NewDialer(dpc, &uxp.Config{ServerPublicKey: kp.Public})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 {
		_, err := d.Dial(ctx, srv.Addr(), &countConn{})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return srv.Stats().Sessions == 2 }, 10*time.Second, 5*time.Millisecond)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(srv, &Options{ConstLabels: map[string]string{"side": "server"}}))
	reg.MustRegister(NewDialerCollector(d, &Options{ConstLabels: map[string]string{"side": "dialer"}}))
	closed := func(side, reason string) float64 {
		name := "uxp_sessions_closed_total"
		if side == "dialer" {
			name = "uxp_dialer_sessions_closed_total"
		}
		return counterOf(t, gather(t, reg), name, "side", side, "reason", reason)
	}
	total := func(side string) (n float64) {
		for _, r := range uxp.CloseReasons() {
			n += closed(side, r)
		}
		return n
	}

	// The kick.
	var kicked *uxp.Conn
	srv.RangeConns(func(c *uxp.Conn) bool { kicked = c; return false })
	require.NoError(t, kicked.Close())
	require.Eventually(t, func() bool { return closed("server", "normal") == 1 && closed("dialer", "normal") == 1 },
		10*time.Second, 5*time.Millisecond)
	require.Equal(t, 1.0, total("server"))
	require.Equal(t, 1.0, total("dialer"))

	// Shutdown.
	require.NoError(t, srv.Close())
	require.Equal(t, 1.0, closed("server", "shutdown"))
	require.Eventually(t, func() bool { return closed("dialer", "shutdown") == 1 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 2.0, total("server"))
	require.Equal(t, 2.0, total("dialer"))
}

// TestHandlersApart: MetricsHandler serves the exposition and no debug
// page, DebugHandler the page and no exposition, so each can be exposed
// on its own.
func TestHandlersApart(t *testing.T) {
	srv := liveServer(t, 1, 1)
	m := get(t, MetricsHandler(srv, nil), "/metrics")
	require.Equal(t, http.StatusOK, m.Code)
	require.Contains(t, m.Body.String(), "uxp_sessions 1")
	require.NotContains(t, m.Body.String(), "127.0.0.1")
	dbg := get(t, DebugHandler(srv, nil), "/debug/uxp")
	require.Equal(t, http.StatusOK, dbg.Code)
	require.Contains(t, dbg.Body.String(), `<table id="sessions">`)
	require.NotContains(t, dbg.Body.String(), "uxp_sessions")
}
