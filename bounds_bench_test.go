package uxp

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/fec"
	"github.com/uxp-go/uxp/internal/kcpx"
	"github.com/uxp-go/uxp/internal/wire"
)

// Helpers and benchmarks for the bounds on hostile peers (bounds_test.go).
// They use nothing the bounds added, so that the same file measures the
// code before them.

// addPair makes a session pair on sp with the FEC parameters p (as if
// negotiated) and exchanges one message each way.
func (sp *sessionPairs) addPair(tb testing.TB, p fecParams) (cli, srv *Conn) {
	tb.Helper()
	var k1, k2 [32]byte
	k1[0], k2[0] = 1, 2
	ck := sessionKeys{send: k1, recv: k2}
	sk := sessionKeys{send: k2, recv: k1}
	now := time.Now()
	id := uint32(len(sp.conns)/2 + 1)
	cli, err := newConn(sp.cliEP, id, &ck, ChaCha20Poly1305, p, sp.srvAP, true, now)
	require.NoError(tb, err)
	srv, err = newConn(sp.srvEP, id, &sk, ChaCha20Poly1305, p, sp.cliAP, false, now)
	require.NoError(tb, err)
	cli.SetHandler(NopHandler{})
	srv.SetHandler(NopHandler{})
	_, err = cli.Write([]byte("hello"))
	require.NoError(tb, err)
	for range 4 {
		cli.pump(now)
		cli.shard.flushSends()
		feed(srv, sp.cliOut.take(), sp.cliAP, now)
		srv.pump(now)
		srv.shard.flushSends()
		feed(cli, sp.srvOut.take(), sp.srvAP, now)
	}
	require.Equal(tb, stateEstablished, srv.state)
	sp.conns = append(sp.conns, cli, srv)
	return cli, srv
}

// inject seals each body as a frame of type kind from cli and delivers it
// to srv at now. The bodies of KCP and lane frames are kcp-go segments,
// turned into the wire's records first (records).
func (sp *sessionPairs) inject(cli, srv *Conn, kind byte, bodies [][]byte, now time.Time) {
	raw := make([][]byte, len(bodies))
	for i, b := range bodies {
		switch kind {
		case frameKCP:
			raw[i] = records(sp.tb, b)
		case frameLane:
			raw[i] = append([]byte{b[0]}, records(sp.tb, b[laneIDSize:])...)
		default:
			raw[i] = b
		}
	}
	sp.injectRaw(cli, srv, kind, raw, now)
}

// injectRaw is inject for frame bodies as they are: for KCP and lane
// frames, records built by hand (rawRecord).
func (sp *sessionPairs) injectRaw(cli, srv *Conn, kind byte, bodies [][]byte, now time.Time) {
	for _, b := range bodies {
		cli.sendFrame(kind, b)
	}
	cli.shard.flushSends()
	feed(srv, sp.cliOut.take(), sp.cliAP, now)
}

// records turns kcp-go segments into the record frame the wire carries
// (internal/wire record.go), as a sender's Output does.
func records(t testing.TB, segs []byte) []byte {
	t.Helper()
	frame, ok := wire.Compact(bytes.Clone(segs))
	require.True(t, ok, "segments the wire cannot carry")
	return bytes.Clone(frame)
}

// rawRecord builds one record by hand, flags and values as given, valid
// or not: a is the record's first byte; una and wnd are written when it
// has U, frg with F, n with L; data follows.
func rawRecord(a byte, una, wnd, ts, sn uint16, frg byte, n uint16, data []byte) []byte {
	b := []byte{a}
	if a&wire.RecordFlagU != 0 {
		b = binary.LittleEndian.AppendUint16(b, una)
		b = binary.LittleEndian.AppendUint16(b, wnd)
	}
	b = binary.LittleEndian.AppendUint16(b, ts)
	b = binary.LittleEndian.AppendUint16(b, sn)
	if a&wire.RecordFlagF != 0 {
		b = append(b, frg)
	}
	if a&wire.RecordFlagL != 0 {
		b = binary.LittleEndian.AppendUint16(b, n)
	}
	return append(b, data...)
}

// fecShard builds a shard header by hand: the peer's own encoder would
// never claim these counts.
func fecShard(group uint32, index int, parity bool, data, par, n int) []byte {
	b := make([]byte, fec.HeaderSize+n)
	b[0], b[1], b[2], b[3] = byte(group), byte(group>>8), byte(group>>16), byte(group>>24)
	b[4] = byte(index)
	b[5] = 0xF1
	if parity {
		b[5] = 0xF2
	}
	b[6], b[7] = byte(data), byte(par)
	b[8], b[9] = byte(n), byte(n>>8)
	return b
}

// kcpSeg appends one KCP segment with an empty or n-byte payload.
func kcpSeg(b []byte, conv uint32, cmd byte, frg byte, wnd uint16, ts, sn, una uint32, n int) []byte {
	var h [kcpOverhead]byte
	binary.LittleEndian.PutUint32(h[0:], conv)
	h[4], h[5] = cmd, frg
	binary.LittleEndian.PutUint16(h[6:], wnd)
	binary.LittleEndian.PutUint32(h[8:], ts)
	binary.LittleEndian.PutUint32(h[12:], sn)
	binary.LittleEndian.PutUint32(h[16:], una)
	binary.LittleEndian.PutUint32(h[20:], uint32(n))
	b = append(b, h[:]...)
	return append(b, make([]byte, n)...)
}

// unackedServer makes a session pair whose server has n segments of
// MSS bytes sent and not acknowledged: the client never sees them.
func unackedServer(t testing.TB, n int) (sp *sessionPairs, cli, srv *Conn, now time.Time, lost [][]byte) {
	// CongestionNone: the n segments must all be in flight at one
	// instant, which a congestion window (10 packets at first) and
	// pacing forbid by design; what is measured is KCP's ACK handling.
	sp = newSessionPairs(t, &Config{CongestionControl: CongestionNone}, false)
	cli, srv = sp.addPair(t, fecParams{})
	now = time.Now()
	msg := make([]byte, srv.ep.set.mss()-laneHeaderMax)
	for range n {
		_, err := srv.Write(msg)
		require.NoError(t, err)
	}
	srv.pump(now)
	srv.shard.flushSends()
	lost = sp.srvOut.take() // the client acknowledges nothing
	return sp, cli, srv, now, lost
}

// BenchmarkACKFlood is the server's cost of one lane-0 frame (laneInput,
// after decryption) while 256 of its segments are unacknowledged: ack is a
// frame of one ACK for the newest segment, flood one packed with 56 of
// them, as a hostile client sends them again and again; data, the
// baseline, is a frame of one full-size data segment the server already
// has (KCP acknowledges it again). Compare them in the same run.
func BenchmarkACKFlood(b *testing.B) {
	const unacked = 256
	for _, bc := range []struct {
		name string
		acks int
	}{{"data", -1}, {"ack", 1}, {"flood", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			sp, cli, srv, _, _ := unackedServer(b, unacked)
			var body []byte
			switch n := bc.acks; {
			case n < 0:
				// sn 0 is the client's first message, long received.
				body = kcpSeg(nil, cli.id, kcp.IKCP_CMD_PUSH, 0, 256, kcpx.Now(), 0, 0, srv.ep.set.mss())
			default:
				if n == 0 {
					n = cli.ep.set.kcpMTU() / kcpOverhead
				}
				for range n {
					body = kcpSeg(body, cli.id, kcp.IKCP_CMD_ACK, 0, 256, kcpx.Now(), unacked-1, 0, 0)
				}
			}
			body = records(b, body)
			frame := make([]byte, len(body))
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				copy(frame, body) // laneInput may not keep it; fresh bytes each time
				srv.laneInput(0, frame, 0, kcp.IKCP_PACKET_REGULAR)
				srv.shard.flushSends() // the ACKs the data frames earn
				sp.srvOut.take()
			}
			require.Equal(b, stateEstablished, srv.state)
			require.Zero(b, srv.Stats().Drops.Malformed)
		})
	}
}

// BenchmarkFECChurn is the server's cost per shard (fecInput, after
// decryption) for a session that negotiated RS(10,3): steady is groups of
// 9 of 10 data shards and one parity shard (one recovery per group);
// churn-negotiated the same with the (data, parity) pair cycling through
// the 30 pairs RS(10,3) allows; churn through 72 pairs up to 64/32, so
// that every recovery needs a codec not in the cache.
func BenchmarkFECChurn(b *testing.B) {
	for _, bc := range []struct {
		name  string
		pairs int
	}{{"steady", 1}, {"churn-negotiated", 30}, {"churn", 72}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := &Config{FEC: FECConfig{DataShards: 10, ParityShards: 3}}
			sp := newSessionPairs(b, cfg, false)
			_, srv := sp.addPair(b, fecParams{data: 10, parity: 3, maxParity: 3})
			now := time.Now()
			// The groups of one cycle, shard by shard.
			var shards [][]byte
			for pair := range bc.pairs {
				data, par := 10, 3
				switch bc.pairs {
				case 30: // every pair RS(10,3) allows
					data, par = 1+pair%10, 1+pair/10
				case 72:
					data, par = 2+pair%63, 1+pair%32
				}
				for i := range data - 1 {
					shards = append(shards, fecShard(0, i, false, data, par, 40))
				}
				shards = append(shards, fecShard(0, data, true, data, par, 42))
			}
			group := uint32(1 << 20)
			buf := make([]byte, 0, 2048)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				s := shards[i]
				if s[4] == 0 && s[5] == 0xF1 {
					group++ // data shard 0 opens the next group
				}
				buf = append(buf[:0], s...)
				binary.LittleEndian.PutUint32(buf, group)
				srv.fecInput(buf, now)
				if i++; i == len(shards) {
					i = 0
				}
			}
		})
	}
}
