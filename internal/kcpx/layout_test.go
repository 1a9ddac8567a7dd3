package kcpx

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	kcp "github.com/xtaci/kcp-go/v5"
)

//lint:file-ignore U1000 the fake* stand-ins below are only inspected through reflect (resolveKCPMem, resolveKCPClone), never used as values, so staticcheck sees their fields as unused.

// Stand-ins for kcp-go's types, to check that resolveKCPMem accepts the
// layout it expects and nothing else.
type (
	fakeSeg struct {
		sn   uint32
		data []byte
	}
	fakeRing struct {
		head, tail int
		elements   []fakeSeg
	}
	fakeHeap struct {
		segments []fakeSeg
		marks    map[uint32]struct{}
	}
	fakeKCP struct {
		snd_queue, rcv_queue, snd_buf *fakeRing
		rcv_buf                       *fakeHeap
		acklist                       []struct{ sn, ts uint32 }
		buffer                        []byte
		rcv_nxt, rcv_wnd              uint32
		rx_rto, rx_minrto             uint32
		snd_una, snd_nxt, snd_wnd     uint32
	}
	fakeHeapBoolMarks struct {
		segments []fakeSeg
		marks    map[uint32]bool
	}
	fakeKCPBoolMarks struct {
		snd_queue, rcv_queue, snd_buf *fakeRing
		rcv_buf                       *fakeHeapBoolMarks
		acklist                       []struct{ sn, ts uint32 }
		buffer                        []byte
		rcv_nxt, rcv_wnd              uint32
		rx_rto, rx_minrto             uint32
		snd_una, snd_nxt, snd_wnd     uint32
	}
	fakeKCPIntWnd struct {
		snd_queue, rcv_queue, snd_buf *fakeRing
		rcv_buf                       *fakeHeap
		acklist                       []struct{ sn, ts uint32 }
		buffer                        []byte
		rcv_nxt, rcv_wnd              int
	}
	fakeKCPNoBuffer struct {
		snd_queue, rcv_queue, snd_buf *fakeRing
		rcv_buf                       *fakeHeap
		acklist                       []struct{ sn, ts uint32 }
	}
	fakeKCPIntBuffer struct {
		snd_queue, rcv_queue, snd_buf *fakeRing
		rcv_buf                       *fakeHeap
		acklist                       []struct{ sn, ts uint32 }
		buffer                        []int
	}
	fakeRing32 struct {
		head, tail int32
		elements   []fakeSeg
	}
	fakeKCPRing32 struct {
		snd_queue, rcv_queue, snd_buf *fakeRing32
		rcv_buf                       *fakeHeap
		acklist                       []struct{ sn, ts uint32 }
		buffer                        []byte
	}
	fakeKCPMixedRings struct {
		snd_queue, rcv_queue *fakeRing
		snd_buf              *fakeRing32
		rcv_buf              *fakeHeap
		acklist              []struct{ sn, ts uint32 }
		buffer               []byte
	}
	fakeHeapOther struct {
		segments []struct{ data []byte }
		marks    map[uint32]struct{}
	}
	fakeKCPOtherHeap struct {
		snd_queue, rcv_queue, snd_buf *fakeRing
		rcv_buf                       *fakeHeapOther
		acklist                       []struct{ sn, ts uint32 }
		buffer                        []byte
	}
)

// TestLayout: kcpx finds every field it needs in the pinned kcp-go (this
// fails on a kcp-go whose KCP changed: update kcpx and its audited list),
// and refuses layouts it does not know.
func TestLayout(t *testing.T) {
	require.NoError(t, kcpMemErr, "kcp-go's KCP is not the layout kcpx knows")
	require.NotNil(t, kcpMem)
	require.NoError(t, gateErr, "kcp-go %s: the fast path is off", Version)
	m, err := resolveKCPMem(reflect.TypeFor[fakeKCP]())
	require.NoError(t, err, "the stand-in has the expected layout")
	require.Equal(t, unsafe.Offsetof(fakeKCP{}.buffer), m.buffer)
	require.Equal(t, unsafe.Offsetof(fakeRing{}.elements), m.ringElems)
	for _, bad := range []struct {
		name string
		typ  reflect.Type
	}{
		{"not a struct", reflect.TypeFor[int]()},
		{"no buffer", reflect.TypeFor[fakeKCPNoBuffer]()},
		{"buffer of ints", reflect.TypeFor[fakeKCPIntBuffer]()},
		{"int32 ring indexes", reflect.TypeFor[fakeKCPRing32]()},
		{"rings of two types", reflect.TypeFor[fakeKCPMixedRings]()},
		{"heap of other segments", reflect.TypeFor[fakeKCPOtherHeap]()},
		{"int receive window", reflect.TypeFor[fakeKCPIntWnd]()},
		{"receive heap marks of another type", reflect.TypeFor[fakeKCPBoolMarks]()},
	} {
		m, err := resolveKCPMem(bad.typ)
		require.Error(t, err, bad.name)
		require.Nil(t, m, bad.name)
	}
}

// Stand-ins for resolveKCPClone: the layout it expects, and one with a
// reference a struct copy would share.
type (
	fakeCloneKCP struct {
		conv                          uint32
		mtu                           uint32
		snd_queue, rcv_queue, snd_buf *fakeRing
		rcv_buf                       *fakeHeap
		acklist                       []struct{ sn, ts uint32 }
		buffer                        []byte
		rcv_nxt, rcv_wnd              uint32
		rx_rto, rx_minrto             uint32
		snd_una, snd_nxt, snd_wnd     uint32
		output                        func([]byte, int)
		log                           func(string, ...any)
	}
	fakeCloneKCPExtra struct {
		conv                          uint32
		snd_queue, rcv_queue, snd_buf *fakeRing
		rcv_buf                       *fakeHeap
		acklist                       []struct{ sn, ts uint32 }
		buffer                        []byte
		rcv_nxt, rcv_wnd              uint32
		rx_rto, rx_minrto             uint32
		snd_una, snd_nxt, snd_wnd     uint32
		output                        func([]byte, int)
		log                           func(string, ...any)
		stats                         *int
	}
	fakeCloneKCPOutput struct {
		conv                          uint32
		snd_queue, rcv_queue, snd_buf *fakeRing
		rcv_buf                       *fakeHeap
		acklist                       []struct{ sn, ts uint32 }
		buffer                        []byte
		rcv_nxt, rcv_wnd              uint32
		rx_rto, rx_minrto             uint32
		snd_una, snd_nxt, snd_wnd     uint32
		output                        func([]byte)
		log                           func(string, ...any)
	}
)

// tune is a configuration like the root's tuneKCP makes.
func tune(k *kcp.KCP) {
	k.NoDelay(0, int(20*time.Millisecond/time.Millisecond), 3, 0)
	k.WndSize(100, 300)
	k.SetMtu(1400)
}

// TestClone: a KCP copied from the Factory's prototype is, field for
// field, what NewKCP, the tuning and slim make, with
// its own conv, output, rings, receive heap and ACK list (a second copy
// shares none of them), and it carries data both ways with a KCP kcp-go
// made. resolveKCPClone refuses a KCP with a reference it does not know.
func TestClone(t *testing.T) {
	require.NoError(t, kcpCloneErr, "kcp-go's KCP is not the layout kcpClone knows")
	require.NotNil(t, kcpCloneMem)
	fake := reflect.TypeFor[fakeCloneKCP]()
	fm, err := resolveKCPMem(fake)
	require.NoError(t, err)
	_, err = resolveKCPClone(fake, fm)
	require.NoError(t, err, "the stand-in has the expected layout")
	for name, fake := range map[string]reflect.Type{
		"extra pointer": reflect.TypeFor[fakeCloneKCPExtra](),
		"output type":   reflect.TypeFor[fakeCloneKCPOutput](),
	} {
		m, err := resolveKCPMem(fake)
		require.NoError(t, err, name)
		c, err := resolveKCPClone(fake, m)
		require.Error(t, err, name)
		require.Nil(t, c, name)
	}

	s := NewFactory(Options{Tune: tune})
	var out1, out2 [][]byte
	k1 := s.clone(7, func(b []byte, n int) { out1 = append(out1, bytes.Clone(b[:n])) })
	k2 := s.clone(9, func(b []byte, n int) { out2 = append(out2, bytes.Clone(b[:n])) })
	require.NotNil(t, k1)
	require.NotNil(t, k2)
	ref := kcp.NewKCP(7, func([]byte, int) {})
	tune(ref)
	s.slim(ref)

	// Field for field: every reference-free field equal to ref's.
	kt := reflect.TypeFor[kcp.KCP]()
	p1, pr := unsafe.Pointer(k1), unsafe.Pointer(ref)
	for i := range kt.NumField() {
		f := kt.Field(i)
		if slices.Contains(kcpCloneRefs, f.Name) {
			continue
		}
		a := unsafe.Slice((*byte)(unsafe.Add(p1, f.Offset)), f.Type.Size())
		b := unsafe.Slice((*byte)(unsafe.Add(pr, f.Offset)), f.Type.Size())
		require.Equal(t, b, a, "field %s", f.Name)
	}
	vr, v1 := inspect(t, ref), inspect(t, k1)
	require.Equal(t, vr, v1, "rings, heap, ACK list and flush buffer as slim leaves them")
	require.Same(t, vr.Buf, v1.Buf, "the Factory's flush buffer")
	require.Equal(t, uint32(9), *(*uint32)(unsafe.Add(unsafe.Pointer(k2), kcpCloneMem.conv)))

	// Nothing shared between copies, or with the prototype.
	m := kcpMem
	for _, k := range []*kcp.KCP{k2, s.proto} {
		p := unsafe.Pointer(k)
		for i := range m.rings {
			require.NotEqual(t, m.ring(p1, i), m.ring(p, i), "ring %d shared", i)
		}
		require.NotEqual(t, *(*unsafe.Pointer)(unsafe.Add(p1, m.rcvBuf)), *(*unsafe.Pointer)(unsafe.Add(p, m.rcvBuf)), "receive heap shared")
	}

	// It works: k1 and a kcp-go KCP exchange messages; k2 stays untouched.
	var toK1 [][]byte
	peer := kcp.NewKCP(7, func(b []byte, n int) { toK1 = append(toK1, bytes.Clone(b[:n])) })
	tune(peer)
	for i := range 50 {
		msg := bytes.Repeat([]byte{byte(i)}, 1+i*97)
		require.GreaterOrEqual(t, k1.Send(msg), 0)
		require.GreaterOrEqual(t, peer.Send(msg), 0)
		for range 4 {
			s.Flush(k1, kcp.IKCP_FLUSH_FULL)
			s.Flush(peer, kcp.IKCP_FLUSH_FULL)
			for _, b := range out1 {
				peer.Input(b, kcp.IKCP_PACKET_REGULAR, false)
			}
			for _, b := range toK1 {
				k1.Input(b, kcp.IKCP_PACKET_REGULAR, false)
			}
			out1, toK1 = out1[:0], toK1[:0]
		}
		for _, k := range []*kcp.KCP{peer, k1} {
			buf := make([]byte, 8192)
			n := k.Recv(buf)
			require.Equal(t, msg, buf[:max(n, 0)], "message %d", i)
		}
	}
	require.Empty(t, out2, "the other copy sent nothing")
	require.Zero(t, k2.WaitSnd())
	require.Equal(t, -1, k2.PeekSize())
}

func inspect(t testing.TB, k *kcp.KCP) View {
	t.Helper()
	v, ok := Inspect(k)
	require.True(t, ok, "kcp-go layout not resolved: %v", kcpMemErr)
	return v
}
