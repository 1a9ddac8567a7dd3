package uxp

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"
)

// exchange runs one round trip on a frame pair: the client's pending
// writes to the server, the server's answer (ACKs and its own writes) back.
func (p *framePair) exchange(now time.Time) {
	p.cli.pump(now)
	p.cli.shard.flushSends()
	feed(p.srv, p.cliOut.take(), p.cliAP, now)
	p.srv.pump(now)
	p.srv.shard.flushSends()
	feed(p.cli, p.srvOut.take(), p.srvAP, now)
}

// TestLaneUnaAhead: a segment whose una acknowledges segments its receiver
// never sent is malformed. The frame stops there (the segments before it
// are taken) and the receiver's send buffer is untouched: KCP would have
// discarded every unacknowledged message for it.
func TestLaneUnaAhead(t *testing.T) {
	p := newFramePair(t, false)
	now := time.Now()
	_, err := p.cli.Write([]byte("a"))
	require.NoError(t, err)
	p.exchange(now)

	_, err = p.srv.Write([]byte("b"))
	require.NoError(t, err)
	p.srv.pump(now)
	p.srv.shard.flushSends()
	pending := p.srvOut.take() // held back: "b" is unacknowledged
	require.Equal(t, 1, p.srv.arq.View(0).WaitSnd)

	hostile := kcpPush(7, 1, []byte{laneMsgPlain, 'x'})
	ack := make([]byte, kcpOverhead)
	binary.LittleEndian.PutUint32(ack[0:], 7)
	ack[4] = kcp.IKCP_CMD_ACK
	binary.LittleEndian.PutUint32(ack[16:], 5) // una: the server sent only sn 0
	p.cli.sendFrame(frameKCP, records(t, append(hostile, ack...)))
	p.cli.shard.flushSends()
	before := p.srv.Stats().Drops.Malformed
	feed(p.srv, p.cliOut.take(), p.cliAP, now)
	require.Equal(t, before+1, p.srv.Stats().Drops.Malformed, "the una ahead is counted")
	_, msgs, _ := p.srvH.snapshot()
	require.Equal(t, [][]byte{[]byte("a"), []byte("x")}, msgs, "the segment before it is taken")
	require.Equal(t, 1, p.srv.arq.View(0).WaitSnd, "the server's message is still in flight")
	require.NotZero(t, p.srv.arq.View(0).Inflight)

	// The real exchange still completes.
	feed(p.cli, pending, p.srvAP, now)
	p.exchange(now)
	_, msgs, _ = p.cliH.snapshot()
	require.Equal(t, [][]byte{[]byte("b")}, msgs)
	require.Zero(t, p.srv.arq.View(0).WaitSnd)
}

// TestLaneKCPOnFirstUse: a lane's KCP (about 1 KB) exists only once the
// lane carries something, on each side independently; a lane first used
// by receiving works like one first used by sending.
func TestLaneKCPOnFirstUse(t *testing.T) {
	p := newFramePairConfig(t, &Config{Lanes: []LaneConfig{{}, {}}})
	now := time.Now()
	_, err := p.cli.Write([]byte("a"))
	require.NoError(t, err)
	p.exchange(now)
	for _, c := range []*Conn{p.cli, p.srv} {
		require.NotNil(t, c.arq.View(0).KCP)
		require.Nil(t, c.arq.View(1).KCP, "lane 1 has carried nothing")
	}
	_, err = p.srv.WriteLane(1, []byte("b"))
	require.NoError(t, err)
	p.srv.pump(now)
	p.srv.shard.flushSends()
	feed(p.cli, p.srvOut.take(), p.srvAP, now)
	p.exchange(now)
	_, msgs, _ := p.cliH.snapshot()
	require.Equal(t, [][]byte{[]byte("b")}, msgs)
	require.NotNil(t, p.cli.arq.View(1).KCP)
	require.Zero(t, p.srv.arq.View(1).WaitSnd, "the client's ACK arrived")
	require.EqualValues(t, 1, p.cli.Stats().Lanes[1].MessagesReceived)
}
