package metrics

import (
	"cmp"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp"
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

// TestPrometheusExposition: the /metrics output parses with expfmt and
// holds every documented metric, with live values.
func TestPrometheusExposition(t *testing.T) {
	srv := liveServer(t, 2, 20)
	for _, perSession := range []bool{false, true} {
		rec := get(t, Handler(srv, &Options{PerSession: perSession}), "/metrics")
		require.Equal(t, http.StatusOK, rec.Code)
		fams := parseExposition(t, rec.Body.String())
		for _, m := range Metrics {
			f, ok := fams[m.Name]
			if m.PerSession && !perSession {
				require.False(t, ok, "%s without PerSession", m.Name)
				continue
			}
			require.True(t, ok, "metric %s missing (PerSession %v)", m.Name, perSession)
			require.Equal(t, m.Type, strings.ToLower(f.GetType().String()), m.Name)
			for _, mm := range f.GetMetric() {
				var names []string
				for _, lp := range mm.GetLabel() {
					names = append(names, lp.GetName())
				}
				want := slices.Clone(m.Labels)
				slices.Sort(want)
				require.Equal(t, want, names, "labels of %s (sorted in the exposition)", m.Name)
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
		if perSession {
			rtts := fams["uxp_session_rtt_seconds"].GetMetric()
			require.Len(t, rtts, 2)
			for _, m := range rtts {
				require.Positive(t, m.GetGauge().GetValue())
			}
		}
	}
}

// TestReadmeListsMetrics keeps the README's Observability table and
// Metrics identical.
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
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(uxp_[a-z_]+)`").FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1])
	}
	var names []string
	for _, m := range Metrics {
		names = append(names, m.Name)
	}
	slices.Sort(documented)
	slices.Sort(names)
	require.Equal(t, names, documented, "README table vs metrics.Metrics")
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
		require.Equal(t, uxp.ChaCha20Poly1305.String(), s.Cipher)
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
