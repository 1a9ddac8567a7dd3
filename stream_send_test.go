package uxp

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/netsim"
)

// TestStreamLoneWriteNotDelayed: on an idle stream a small write leaves at
// once (no Nagle-style wait for an acknowledgement), and so does each
// request of a ping-pong exchange.
func TestStreamLoneWriteNotDelayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const oneWay = 10 * time.Millisecond
		p := newStreamPair(t, 41, netsim.Impairment{Delay: oneWay}, nil, nil)
		buf := make([]byte, 64)
		for i := range 5 {
			start := time.Now()
			_, err := p.cli.Write([]byte("ping"))
			require.NoError(t, err)
			_, err = p.cli.Write([]byte("!")) // a second write right behind the first
			require.NoError(t, err)
			got := 0
			for got < 5 {
				n, err := p.srv.Read(buf[got:])
				require.NoError(t, err)
				got += n
			}
			require.Equal(t, "ping!", string(buf[:5]))
			require.LessOrEqual(t, time.Since(start), oneWay+time.Millisecond, "round %d: no coalescing delay", i)
			_, err = p.srv.Write([]byte("pong"))
			require.NoError(t, err)
			_, err = io.ReadFull(p.cli, buf[:4])
			require.NoError(t, err)
		}
	})
}

// TestStreamCoalescesSmallWrites: 20-byte writes behind a full window are
// sent as segment-size messages, not one message per write, and every
// byte arrives once, in order; Close hands the last partial message over.
func TestStreamCoalescesSmallWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 42, netsim.Impairment{Delay: 20 * time.Millisecond}, nil, nil)
		const writes = 20_000
		var want bytes.Buffer
		done := make(chan []byte)
		go func() {
			got, _ := io.ReadAll(p.srv)
			done <- got
		}()
		var f [20]byte
		for i := range writes {
			binary.LittleEndian.PutUint32(f[:], uint32(i))
			want.Write(f[:])
			n, err := p.cli.Write(f[:])
			require.NoError(t, err)
			require.Equal(t, len(f), n)
		}
		msgs := p.cli.Session().Stats().MessagesSent
		require.NoError(t, p.cli.Close())
		got := <-done
		require.True(t, bytes.Equal(want.Bytes(), got), "all %d bytes once and in order (got %d)", want.Len(), len(got))
		t.Logf("%d writes of 20 bytes went as %d messages", writes, msgs)
		require.Less(t, msgs, uint64(writes/20), "coalesced into segment-size messages")
	})
}

// TestStreamSendQueueBoundedByTime: a writer flooding a reader that
// drains at 200 KB/s is held back by the time bound: the session's send
// queue stays far below Config.SendQueueBytes (1 MiB), its measured delay
// is reported, and everything arrives.
func TestStreamSendQueueBoundedByTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newStreamPair(t, 43, netsim.Impairment{Delay: 10 * time.Millisecond}, nil, nil)
		data := testMessage(43, 2<<20)
		read := make(chan []byte, 1)
		go func() {
			got, _ := slowRead(p.srv, 200_000)
			read <- got
		}()
		stop := make(chan struct{})
		maxQueued, maxDelay := 0, time.Duration(0)
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				st := p.cli.Session().Stats()
				maxQueued = max(maxQueued, st.SendQueueBytes)
				maxDelay = max(maxDelay, st.SendQueueDelay)
			}
		}()
		for off := 0; off < len(data); off += 1000 {
			_, err := p.cli.Write(data[off:min(off+1000, len(data))])
			require.NoError(t, err)
		}
		close(stop)
		<-sampled
		require.NoError(t, p.cli.Close())
		got := <-read
		require.True(t, bytes.Equal(data, got), "everything arrives")
		t.Logf("send queue at most %d bytes, delay at most %v", maxQueued, maxDelay)
		require.Less(t, maxQueued, defaultSendQueueBytes/2, "the time bound, not the byte limit, holds the writer")
		require.Positive(t, maxDelay, "the queue delay is reported")
	})
}
