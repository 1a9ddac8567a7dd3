package arq

import (
	"bytes"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/wire"
)

// TestEnqueueRoom: a message given with room in front goes into KCP with
// its lane header written into that room (no scratch copy); one whose
// header does not fit (a deadline header in one byte of room), or given
// with none (Enqueue), is copied behind its header instead and the
// caller's bytes are left alone. Each arrives intact at the peer.
func TestEnqueueRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, testConfig(1), 0, 1)
		now := time.Now()
		expiry := now.Add(time.Hour)
		m0, m1, m2 := msg(0, 0, 500), msg(0, 1, 2500), msg(0, 2, 300)

		const room = 14
		buf0 := append(bytes.Repeat([]byte{0xEE}, room), m0...)
		require.True(t, p.a.ls.EnqueueRoom(now, 0, buf0, room, time.Time{}, NoLimit))
		require.Equal(t, wire.LaneMsgPlain, buf0[room-1], "the plain header went into the room")
		require.Equal(t, byte(0xEE), buf0[room-2], "only the header's byte of the room is written")

		buf1 := append([]byte{0xEE}, m1...)
		require.True(t, p.a.ls.EnqueueRoom(now, 0, buf1, 1, expiry, NoLimit))
		require.Equal(t, byte(0xEE), buf1[0], "a deadline header does not fit one byte: copied instead")

		c2 := bytes.Clone(m2)
		require.True(t, p.a.ls.Enqueue(now, 0, m2, time.Time{}, NoLimit))
		require.Equal(t, c2, m2, "Enqueue leaves the caller's message alone")

		p.a.ls.Flush(now)
		p.run(t, time.Second, func() bool { return len(p.b.got[0]) == 3 })
		require.Equal(t, [][]byte{m0, m1, m2}, p.b.got[0])
	})
}

// TestBacklogBuffersReused: a backlogged message is copied once, into a
// buffer from the shard's free list; once admitted the buffer goes back,
// and the next backlogged message takes it, so a sender that runs ahead
// of its budget does not allocate a buffer per message. The free list is
// bounded.
func TestBacklogBuffersReused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, testConfig(1), 0, 2)
		a := p.a
		now := time.Now()
		const size = 1000
		var want [][]byte
		var arrays []*byte
		for i := range 20 {
			m := msg(0, i, size)
			want = append(want, m)
			require.False(t, a.ls.Enqueue(now, 0, m, time.Time{}, 0), "no budget: backlogged")
			arrays = append(arrays, &a.ls.lanes[0].backlog[0].buf[0])
			_, admitted := a.ls.Admit(now, NoLimit)
			require.True(t, admitted)
			a.ls.Flush(now)
			p.pass(now)
		}
		for i := 1; i < len(arrays); i++ {
			require.Same(t, arrays[0], arrays[i], "message %d reused the first message's buffer", i)
		}
		p.run(t, time.Second, func() bool { return len(p.b.got[0]) == len(want) })
		require.Equal(t, want, p.b.got[0])

		// The bound: buffers beyond msgBufsKeptBytes go to the GC.
		sh := &a.sh
		for range 2 * msgBufsKeptBytes / (laneRoom + size) {
			sh.putMsgBuf(make([]byte, laneRoom+size))
		}
		require.LessOrEqual(t, sh.msgBufBytes, msgBufsKeptBytes)
		n := 0
		for _, b := range sh.msgBufs {
			n += cap(b)
		}
		require.Equal(t, n, sh.msgBufBytes)
	})
}
