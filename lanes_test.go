package uxp

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/uxp-go/uxp/internal/netsim"
)

// laneRun sends n stamped messages on each of lanes 0 and 1, one pair every
// 20 ms, over a 20 ms link, with lane 1's frames (data and ACKs, both
// directions) dropped at the given rate. It returns each lane's latencies
// after checking every message arrived once, in order.
func laneRun(t *testing.T, lane1Loss float64) (lat0, lat1 []time.Duration) {
	const n = 500
	synctest.Test(t, func(t *testing.T) {
		lanes := []LaneConfig{{Priority: 1}, {}}
		srvCfg := &Config{Lanes: lanes}
		cliCfg := &Config{Lanes: lanes}
		if lane1Loss > 0 {
			hooksOf(srvCfg).dropLane = laneDropper(1, lane1Loss, 1)
			hooksOf(cliCfg).dropLane = laneDropper(1, lane1Loss, 2)
		}
		p := newSimPair(t, 64, srvCfg, cliCfg, false)
		rec := serverRecorder(p)
		p.net.SetDefault(netsim.Impairment{Delay: 20 * time.Millisecond})
		require.NoError(t, p.cli.Start(context.Background()))
		conn := p.cli.Conn()
		require.Equal(t, 2, conn.Lanes())
		for i := range n {
			for lane := range 2 {
				_, err := conn.WriteLane(lane, stampedMessage(i, 200+i%1500))
				require.NoError(t, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(5 * time.Second)
		msgs, _ := rec.snapshot()
		for lane, lat := range []*[]time.Duration{&lat0, &lat1} {
			got := onLane(msgs, lane)
			require.Len(t, got, n, "lane %d", lane)
			for i, m := range got {
				require.Equal(t, i, stampIndex(m.data), "lane %d out of order", lane)
				require.Len(t, m.data, 200+i%1500)
				*lat = append(*lat, stampLatency(m))
			}
		}
		st := conn.Stats()
		require.Len(t, st.Lanes, 2)
		require.EqualValues(t, n, st.Lanes[0].MessagesSent)
		require.EqualValues(t, n, st.Lanes[1].MessagesSent)
		if lane1Loss > 0 {
			require.Zero(t, st.Lanes[0].Retransmissions, "lane 0 lost nothing")
			require.Positive(t, st.Lanes[1].Retransmissions)
		}
	})
	return lat0, lat1
}

// TestLaneIsolation: lane 1 starved by 30% loss on its own packets must not
// hold back lane 0, whose p99 latency stays within 2x of a clean run.
// Latencies are virtual time inside synctest, so this is deterministic.
func TestLaneIsolation(t *testing.T) {
	clean0, clean1 := laneRun(t, 0)
	lossy0, lossy1 := laneRun(t, 0.3)
	c0, l0 := percentile(t, clean0, 0.99), percentile(t, lossy0, 0.99)
	c1, l1 := percentile(t, clean1, 0.99), percentile(t, lossy1, 0.99)
	t.Logf("p99 lane 0: clean %v, lane 1 lossy %v; p99 lane 1: clean %v, lossy %v", c0, l0, c1, l1)
	require.LessOrEqual(t, l0, 2*c0, "lane 0's p99 must stay within 2x of the clean run")
	require.Greater(t, l1, 2*c1, "the loss must really hurt lane 1 (else the test proves nothing)")
}

// TestLanePriority: with a small send window and both lanes backlogged, the
// higher-priority lane is served first even though it was written last.
func TestLanePriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lanes := []LaneConfig{{Priority: 0}, {Priority: 5}}
		cfg := &Config{Lanes: lanes, KCP: KCPConfig{SendWindow: 8}}
		p := newSimPair(t, 65, &Config{Lanes: lanes}, cfg, false)
		rec := serverRecorder(p)
		p.net.SetDefault(netsim.Impairment{Delay: 20 * time.Millisecond})
		require.NoError(t, p.cli.Start(context.Background()))
		conn := p.cli.Conn()
		const n = 200
		for i := range n {
			_, err := conn.WriteLane(0, stampedMessage(i, 1000))
			require.NoError(t, err)
		}
		for i := range n {
			_, err := conn.WriteLane(1, stampedMessage(i, 1000))
			require.NoError(t, err)
		}
		time.Sleep(10 * time.Second)
		msgs, _ := rec.snapshot()
		low, high := onLane(msgs, 0), onLane(msgs, 1)
		require.Len(t, low, n)
		require.Len(t, high, n)
		t.Logf("last high-priority message at %v, last low-priority at %v", stampLatency(high[n-1]), stampLatency(low[n-1]))
		require.True(t, high[n-1].at.Before(low[n/2].at), "the high-priority lane must finish before half the low one")
	})
}

func TestLaneConfigValidation(t *testing.T) {
	tests := []struct {
		name  string
		lanes []LaneConfig
		field string
	}{
		{"too many lanes", make([]LaneConfig, maxLanes+1), "Lanes"},
		{"negative deadline", []LaneConfig{{}, {Deadline: -time.Second}}, "Lanes[1].Deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Config{Lanes: tt.lanes}).Validate()
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "got %v", err)
			require.Equal(t, tt.field, ce.Field)
		})
	}
	require.NoError(t, (&Config{Lanes: make([]LaneConfig, maxLanes)}).Validate())
}

// TestLaneWriteErrors checks the bad-argument results of the lane writes,
// and that a handler without LaneHandler gets every lane's messages.
func TestLaneWriteErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{Lanes: []LaneConfig{{}, {}}}
		p := newSimPair(t, 66, cfg, cfg, true)
		conn := p.cli.Conn()
		for _, lane := range []int{-1, 2, 1000} {
			_, err := conn.WriteLane(lane, []byte("x"))
			require.ErrorIs(t, err, ErrNoSuchLane)
			_, err = conn.WriteLaneWithDeadline(lane, []byte("x"), time.Second)
			require.ErrorIs(t, err, ErrNoSuchLane)
		}
		for _, d := range []time.Duration{0, -time.Second} {
			_, err := conn.WriteWithDeadline([]byte("x"), d)
			require.ErrorIs(t, err, ErrBadDeadline)
		}
		_, err := conn.WriteLane(1, make([]byte, defaultMaxMessageSize+1))
		require.ErrorIs(t, err, ErrMessageTooLarge)
		_, err = conn.WriteLane(1, []byte("one"))
		require.NoError(t, err)
		_, err = conn.Write([]byte("zero"))
		require.NoError(t, err)
		time.Sleep(200 * time.Millisecond)
		_, msgs, _ := p.srvH.handler(0).snapshot()
		require.ElementsMatch(t, [][]byte{[]byte("one"), []byte("zero")}, msgs)
	})
}

// kcpPush builds one KCP PUSH segment (a whole message: frg 0).
func kcpPush(conv, sn uint32, data []byte) []byte {
	seg := make([]byte, kcpOverhead+len(data))
	binary.LittleEndian.PutUint32(seg[0:], conv)
	seg[4] = kcp.IKCP_CMD_PUSH
	binary.LittleEndian.PutUint16(seg[6:], 128) // wnd
	binary.LittleEndian.PutUint32(seg[12:], sn)
	binary.LittleEndian.PutUint32(seg[20:], uint32(len(data)))
	copy(seg[kcpOverhead:], data)
	return seg
}

// TestLaneEmptyMessage: an authenticated peer that sends an empty KCP
// message (no lane kind byte) gets it counted as malformed, and the
// messages behind it are still delivered at once.
func TestLaneEmptyMessage(t *testing.T) {
	p := newFramePair(t, false)
	now := time.Now()
	body := append(kcpPush(7, 0, nil), kcpPush(7, 1, []byte{laneMsgPlain, 'h', 'i'})...)
	p.cli.sendFrame(frameKCP, records(t, body))
	p.cli.shard.flushSends() // as the shard does when its event ends
	before := p.srv.Stats().Drops.Malformed
	feed(p.srv, p.cliOut.take(), p.cliAP, now)
	_, msgs, _ := p.srvH.snapshot()
	require.Equal(t, [][]byte{[]byte("hi")}, msgs, "the message after the empty one is delivered")
	require.Equal(t, before+1, p.srv.Stats().Drops.Malformed, "the empty message is counted")
	require.Equal(t, stateEstablished, p.srv.state)
}
