package uxp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// traceRecorder is a slog.Handler that keeps every record.
type traceRecorder struct {
	mu   sync.Mutex
	recs []traceRec
}

type traceRec struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (r *traceRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *traceRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *traceRecorder) WithGroup(string) slog.Handler            { return r }
func (r *traceRecorder) Handle(_ context.Context, rec slog.Record) error {
	tr := traceRec{level: rec.Level, msg: rec.Message, attrs: map[string]string{}}
	rec.Attrs(func(a slog.Attr) bool { tr.attrs[a.Key] = a.Value.String(); return true })
	r.mu.Lock()
	r.recs = append(r.recs, tr)
	r.mu.Unlock()
	return nil
}

func (r *traceRecorder) find(msg, side string) []traceRec {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []traceRec
	for _, rec := range r.recs {
		if rec.msg == msg && rec.attrs["side"] == side {
			out = append(out, rec)
		}
	}
	return out
}

// TestTrace follows one session from handshake to close through the trace
// of both sides.
func TestTrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &traceRecorder{}
		log := slog.New(rec)
		// No AES instructions on the client: ChaCha20 on every machine.
		p := newSimPair(t, 5, &Config{Tracer: log}, &Config{Tracer: log, hooks: &testHooks{aes: aesAbsent}}, true)
		waitFor(t, func() bool { c, _, _ := p.srvH.counts(); return c == 1 })
		id := p.cli.Conn().ID()
		sid := slog.Uint64Value(uint64(id)).String()
		require.NoError(t, p.cli.Close())
		waitFor(t, func() bool { _, cc, _ := p.srvH.counts(); return cc == 1 })

		one := func(msg, side string) traceRec {
			t.Helper()
			got := rec.find(msg, side)
			require.Len(t, got, 1, "%s on the %s", msg, side)
			require.Equal(t, slog.LevelDebug, got[0].level)
			return got[0]
		}
		require.NotEmpty(t, rec.find(TraceInitiationSent, "client"))
		require.Equal(t, "1", rec.find(TraceInitiationSent, "client")[0].attrs["attempt"])
		ans := one(TraceInitiationAnswer, "server")
		require.Equal(t, sid, ans.attrs["session"])
		require.Equal(t, p.cliPC.LocalAddr().String(), ans.attrs["peer"])
		require.Equal(t, ChaCha20Poly1305.String(), ans.attrs["cipher"])
		require.Equal(t, sid, one(TraceHandshakeDone, "client").attrs["session"])
		require.Equal(t, sid, one(TraceEstablished, "client").attrs["session"])
		require.Equal(t, sid, one(TraceEstablished, "server").attrs["session"])

		cc := one(TraceClosed, "client")
		require.Equal(t, "false", cc.attrs["by_peer"])
		require.Equal(t, ErrConnClosed.Error(), cc.attrs["err"])
		sc := one(TraceClosed, "server")
		require.Equal(t, "true", sc.attrs["by_peer"])
		require.Equal(t, "normal", sc.attrs["reason"])
		require.Equal(t, sid, sc.attrs["session"])
	})
}

func TestTraceRefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &traceRecorder{}
		log := slog.New(rec)
		p := newSimPair(t, 6, &Config{Tracer: log}, &Config{Tracer: log, FEC: FECConfig{DataShards: 10}}, false)
		err := p.cli.Start(context.Background())
		require.ErrorIs(t, err, ErrFECRefused)
		require.Len(t, rec.find(TraceHandshakeRefused, "server"), 1)
		require.Len(t, rec.find(TraceHandshakeRefused, "client"), 1)
	})
}

// movingPC sends from a second socket once moved is set, like a client
// behind a NAT whose mapping changed; it keeps reading from the first,
// where the server's replies still go (uxp does not migrate yet).
type movingPC struct {
	*netsim.PacketConn
	alt   *netsim.PacketConn
	moved atomic.Bool
}

func (m *movingPC) WriteTo(b []byte, addr net.Addr) (int, error) {
	if m.moved.Load() {
		return m.alt.WriteTo(b, addr)
	}
	return m.PacketConn.WriteTo(b, addr)
}

// TestTraceAddressChange: authenticated packets from a new address are
// traced once per new address, on the server.
func TestTraceAddressChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &traceRecorder{}
		n := netsim.NewNetwork(7)
		defer n.Close()
		kp := testKeys(t)
		srvPC, err := n.Listen("10.0.0.1:4000")
		require.NoError(t, err)
		srvH := &recordServer{}
		srv, err := NewServer(srvPC, srvH, &Config{PrivateKey: kp.Private, Tracer: slog.New(rec)})
		require.NoError(t, err)
		require.NoError(t, srv.Start())
		defer srv.Close()
		a, err := n.Listen("10.0.0.2:5000")
		require.NoError(t, err)
		b, err := n.Listen("10.0.0.3:6000")
		require.NoError(t, err)
		defer b.Close()
		pc := &movingPC{PacketConn: a, alt: b}
		cli, err := NewClient(pc, srvPC.LocalAddr(), nil, &Config{ServerPublicKey: kp.Public})
		require.NoError(t, err)
		defer cli.Close()
		require.NoError(t, cli.Start(context.Background()))
		waitFor(t, func() bool { c, _, _ := srvH.counts(); return c == 1 })

		pc.moved.Store(true)
		for i := range 3 {
			writeRetry(t, cli.Conn(), testMessage(i, 10))
			time.Sleep(50 * time.Millisecond)
		}
		waitFor(t, func() bool { _, msgs, _ := srvH.handler(0).snapshot(); return len(msgs) == 3 })
		got := rec.find(TraceAddressChanged, "server")
		require.Len(t, got, 1, "traced once per new address")
		require.Equal(t, "10.0.0.2:5000", got[0].attrs["from"])
		require.Equal(t, "10.0.0.3:6000", got[0].attrs["to"])
		require.Equal(t, slog.Uint64Value(uint64(cli.Conn().ID())).String(), got[0].attrs["session"])
	})
}

// benchTracer is a package variable so that the compiler cannot prove the
// tracer disabled and delete the calls.
var (
	benchTracer tracer
	benchSink   uint64
)

var errBench = errors.New("bench")

// traceLifecycle does a little work and passes the trace points of one
// session's life, as the SDK's call sites do: each guard inlines into it.
//
//go:noinline
func traceLifecycle(t *tracer, id uint32, ap netip.AddrPort) {
	benchSink += uint64(id) + uint64(ap.Port())
	t.initiationSent(1, ap)
	t.handshakeDone(id, ap, ChaCha20Poly1305, 10, 3)
	t.established(id, ap)
	t.addressChanged(id, ap, ap)
	t.closed(id, errBench, CloseNormal, false, true)
}

// traceBaseline is traceLifecycle without the trace points.
//
//go:noinline
func traceBaseline(_ *tracer, id uint32, ap netip.AddrPort) {
	benchSink += uint64(id) + uint64(ap.Port())
}

// BenchmarkTrace compares the trace points of one session's life with
// tracing disabled against a baseline without them (the acceptance bar:
// 0 allocs/op and about the same time), and shows the enabled cost.
func BenchmarkTrace(b *testing.B) {
	ap := netip.MustParseAddrPort("10.0.0.2:5000")
	run := func(name string, t tracer, f func(*tracer, uint32, netip.AddrPort)) {
		b.Run(name, func(b *testing.B) {
			benchTracer = t
			defer func() { benchTracer = tracer{} }()
			b.ReportAllocs()
			for i := uint32(0); b.Loop(); i++ {
				f(&benchTracer, i, ap)
			}
		})
	}
	run("baseline", tracer{}, traceBaseline)
	run("disabled", tracer{}, traceLifecycle)
	run("enabled", newTracer(slog.New(slog.DiscardHandler), false), traceLifecycle)
}

// TestTraceDisabledAllocs is the allocation half of BenchmarkTrace as a
// test: disabled trace points never allocate.
func TestTraceDisabledAllocs(t *testing.T) {
	ap := netip.MustParseAddrPort("10.0.0.2:5000")
	benchTracer = tracer{}
	allocs := testing.AllocsPerRun(1000, func() { traceLifecycle(&benchTracer, 7, ap) })
	require.Zero(t, allocs)
}

// TestTraceMigrationAndRekey: a NAT rebinding is traced as an address
// change and then a migration, and key rotations as rekeys with rising
// epochs, on both sides.
func TestTraceMigrationAndRekey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &traceRecorder{}
		log := slog.New(rec)
		cfg := &Config{Tracer: log, RekeyAfterTime: time.Second}
		p := newSimPair(t, 9, cfg, cfg, false)
		echoSessions(p)
		p.net.SetDefault(netsim.Impairment{Delay: 5 * time.Millisecond})
		require.NoError(t, p.cli.Start(context.Background()))
		oldAddr := p.cliPC.LocalAddr().String()
		// 5 s of traffic. A rekey is due RekeyAfterTime (1 s) after the
		// last, but cannot start until the previous generation retired,
		// rekeyGrace (2 s) after the switch: rekeys come about 2 s apart,
		// at about 1, 3 and 5 s. (With 3 s of traffic the second one fell
		// on the end of the traffic and was sometimes missed.)
		sendAndCheck(t, p, 500, 10*time.Millisecond, func() {
			require.NoError(t, p.cliPC.Rebind("10.0.0.3:6000"))
		})
		id := slog.Uint64Value(uint64(p.cli.Conn().ID())).String()

		changed := rec.find(TraceAddressChanged, "server")
		require.Len(t, changed, 1)
		require.Equal(t, oldAddr, changed[0].attrs["from"])
		require.Equal(t, "10.0.0.3:6000", changed[0].attrs["to"])
		moved := rec.find(TraceMigrated, "server")
		require.Len(t, moved, 1)
		require.Equal(t, id, moved[0].attrs["session"])
		require.Equal(t, "10.0.0.3:6000", moved[0].attrs["to"])

		// The bubble is idle here, so the counters cannot move while we
		// compare. The server may trail by one rekey still in flight.
		counted := map[string]uint64{"client": p.cli.Conn().Stats().Rekeys, "server": p.srv.Stats().Rekeys}
		require.GreaterOrEqual(t, counted["client"], uint64(2), "5 s of traffic at one rekey every 2 s")
		for _, side := range []string{"client", "server"} {
			rekeys := rec.find(TraceRekeyed, side)
			require.NotEmpty(t, rekeys, side)
			require.EqualValues(t, counted[side], len(rekeys), "%s: one trace record per rekey", side)
			prev := -1
			for _, r := range rekeys {
				require.Equal(t, id, r.attrs["session"])
				e, err := strconv.Atoi(r.attrs["epoch"])
				require.NoError(t, err)
				require.Greater(t, e, prev, "%s: epochs rise", side)
				prev = e
			}
		}
	})
}
