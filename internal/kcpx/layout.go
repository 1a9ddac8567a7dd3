package kcpx

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"unsafe"

	kcp "github.com/xtaci/kcp-go/v5"
)

// kcpMemLayout locates the fields of a kcp.KCP that kcpx resizes:
// byte offsets, and the unexported types needed to make new values.
type kcpMemLayout struct {
	rings     [3]uintptr   // KCP.snd_queue, rcv_queue, snd_buf (*RingBuffer[segment])
	ringHead  uintptr      // RingBuffer.head (int)
	ringTail  uintptr      // RingBuffer.tail (int)
	ringElems uintptr      // RingBuffer.elements ([]segment)
	segsType  reflect.Type // []segment
	rcvBuf    uintptr      // KCP.rcv_buf (*segmentHeap)
	heapSegs  uintptr      // segmentHeap.segments ([]segment)
	heapMarks uintptr      // segmentHeap.marks (map[uint32]struct{})
	marksType reflect.Type
	acklist   uintptr // KCP.acklist ([]ackItem)
	ackType   reflect.Type
	buffer    uintptr // KCP.buffer ([]byte)
	rcvNxt    uintptr // KCP.rcv_nxt (uint32), read by kcpRecvState
	rcvWnd    uintptr // KCP.rcv_wnd (uint32)
	rxRTO     uintptr // KCP.rx_rto (uint32), written by SetMinRTO
	rxMinRTO  uintptr // KCP.rx_minrto (uint32)
	sndUna    uintptr // KCP.snd_una (uint32), read by LimitNew
	sndNxt    uintptr // KCP.snd_nxt (uint32)
	sndWnd    uintptr // KCP.snd_wnd (uint32), written by LimitNew
}

// kcpMem is the layout of this kcp-go version's KCP, or nil (with
// kcpMemErr saying why) when it is not the one kcpx knows. Computed
// once at init and never written after.
var kcpMem, kcpMemErr = resolveKCPMem(reflect.TypeFor[kcp.KCP]())

// sliceHeader is the runtime layout of a slice, for reading lengths.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// resolveKCPMem finds and checks, in kt (kcp.KCP), every field kcpx
// touches.
func resolveKCPMem(kt reflect.Type) (*kcpMemLayout, error) {
	var m kcpMemLayout
	field := func(t reflect.Type, name string, kind reflect.Kind) (reflect.StructField, error) {
		f, ok := t.FieldByName(name)
		if !ok || len(f.Index) != 1 || f.Type.Kind() != kind {
			return f, fmt.Errorf("kcp-go %s.%s: missing or not a %v", t.Name(), name, kind)
		}
		return f, nil
	}
	if kt.Kind() != reflect.Struct {
		return nil, fmt.Errorf("kcp-go %v: not a struct", kt)
	}
	var ringType reflect.Type
	for i, name := range []string{"snd_queue", "rcv_queue", "snd_buf"} {
		f, err := field(kt, name, reflect.Pointer)
		if err != nil {
			return nil, err
		}
		if ringType != nil && f.Type != ringType {
			return nil, fmt.Errorf("kcp-go KCP.%s: type %v, want %v", name, f.Type, ringType)
		}
		ringType, m.rings[i] = f.Type, f.Offset
	}
	rt := ringType.Elem()
	if rt.Kind() != reflect.Struct {
		return nil, fmt.Errorf("kcp-go ring %v: not a struct", rt)
	}
	intType := reflect.TypeFor[int]()
	for _, p := range []struct {
		name string
		off  *uintptr
	}{{"head", &m.ringHead}, {"tail", &m.ringTail}} {
		f, err := field(rt, p.name, reflect.Int)
		if err != nil {
			return nil, err
		}
		if f.Type != intType {
			return nil, fmt.Errorf("kcp-go ring.%s: type %v, want int", p.name, f.Type)
		}
		*p.off = f.Offset
	}
	f, err := field(rt, "elements", reflect.Slice)
	if err != nil {
		return nil, err
	}
	m.ringElems, m.segsType = f.Offset, f.Type
	seg := m.segsType.Elem()
	if seg.Kind() != reflect.Struct {
		return nil, fmt.Errorf("kcp-go segment %v: not a struct", seg)
	}
	if d, ok := seg.FieldByName("data"); !ok || d.Type != reflect.TypeFor[[]byte]() {
		return nil, fmt.Errorf("kcp-go segment %v: no data []byte", seg)
	}

	f, err = field(kt, "rcv_buf", reflect.Pointer)
	if err != nil {
		return nil, err
	}
	m.rcvBuf = f.Offset
	ht := f.Type.Elem()
	if ht.Kind() != reflect.Struct {
		return nil, fmt.Errorf("kcp-go KCP.rcv_buf %v: not a pointer to a struct", f.Type)
	}
	if f, err = field(ht, "segments", reflect.Slice); err != nil {
		return nil, err
	}
	if f.Type != m.segsType {
		return nil, fmt.Errorf("kcp-go segmentHeap.segments: type %v, want %v", f.Type, m.segsType)
	}
	m.heapSegs = f.Offset
	if f, err = field(ht, "marks", reflect.Map); err != nil {
		return nil, err
	}
	if f.Type != reflect.TypeFor[map[uint32]struct{}]() {
		return nil, fmt.Errorf("kcp-go segmentHeap.marks: type %v, want map[uint32]struct{}", f.Type)
	}
	m.heapMarks, m.marksType = f.Offset, f.Type

	if f, err = field(kt, "acklist", reflect.Slice); err != nil {
		return nil, err
	}
	m.acklist, m.ackType = f.Offset, f.Type

	if f, err = field(kt, "buffer", reflect.Slice); err != nil {
		return nil, err
	}
	if f.Type != reflect.TypeFor[[]byte]() {
		return nil, errors.New("kcp-go KCP.buffer: not a []byte")
	}
	m.buffer = f.Offset
	for _, p := range []struct {
		name string
		off  *uintptr
	}{{"rcv_nxt", &m.rcvNxt}, {"rcv_wnd", &m.rcvWnd}, {"rx_rto", &m.rxRTO}, {"rx_minrto", &m.rxMinRTO},
		{"snd_una", &m.sndUna}, {"snd_nxt", &m.sndNxt}, {"snd_wnd", &m.sndWnd}} {
		f, ok := kt.FieldByName(p.name)
		if !ok || len(f.Index) != 1 || f.Type != reflect.TypeFor[uint32]() {
			return nil, fmt.Errorf("kcp-go KCP.%s: missing or not a uint32", p.name)
		}
		*p.off = f.Offset
	}
	return &m, nil
}

// kcpCloneLayout locates what kcpClone gives each copy of a prototype
// KCP. Every other field of kcp.KCP, and of its rings and receive heap,
// holds no reference (resolveKCPClone checks), so a struct copy gives
// the copy its own value of it.
type kcpCloneLayout struct {
	conv       uintptr // KCP.conv (uint32)
	output     uintptr // KCP.output (output_callback)
	outputType reflect.Type
	log        uintptr // KCP.log (logoutput_callback): nil in a copy
	logType    reflect.Type
	ringType   reflect.Type // RingBuffer[segment]
	heapType   reflect.Type // segmentHeap
}

// kcpCloneMem is the clone layout of this kcp-go version's KCP, or nil
// (with kcpCloneErr saying why): lanes then get NewKCP's KCPs. Computed
// once at init and never written after.
var kcpCloneMem, kcpCloneErr = resolveKCPClone(reflect.TypeFor[kcp.KCP](), kcpMem)

// kcpCloneRefs are the fields of kcp.KCP that hold references, each of
// which kcpClone replaces (or, for buffer, shares on purpose).
var kcpCloneRefs = []string{"snd_queue", "rcv_queue", "snd_buf", "rcv_buf", "acklist", "buffer", "output", "log"}

// resolveKCPClone finds the fields kcpClone sets in kt (kcp.KCP), whose
// kcpx layout is m, and checks that no other field holds a
// reference a struct copy would share.
func resolveKCPClone(kt reflect.Type, m *kcpMemLayout) (*kcpCloneLayout, error) {
	if m == nil {
		return nil, errors.New("kcp-go layout unknown")
	}
	var c kcpCloneLayout
	refsOnly := func(t reflect.Type, allowed ...string) error {
		for i := range t.NumField() {
			f := t.Field(i)
			if !slices.Contains(allowed, f.Name) && holdsRefs(f.Type) {
				return fmt.Errorf("kcp-go %s.%s: holds references kcpx does not copy", t.Name(), f.Name)
			}
		}
		return nil
	}
	if err := refsOnly(kt, kcpCloneRefs...); err != nil {
		return nil, err
	}
	f, ok := kt.FieldByName("conv")
	if !ok || f.Type != reflect.TypeFor[uint32]() {
		return nil, errors.New("kcp-go KCP.conv: missing or not a uint32")
	}
	c.conv = f.Offset
	out := reflect.TypeFor[func([]byte, int)]()
	for _, p := range []struct {
		name string
		off  *uintptr
		typ  *reflect.Type
	}{{"output", &c.output, &c.outputType}, {"log", &c.log, &c.logType}} {
		f, ok := kt.FieldByName(p.name)
		if !ok || f.Type.Kind() != reflect.Func {
			return nil, fmt.Errorf("kcp-go KCP.%s: missing or not a func", p.name)
		}
		*p.off, *p.typ = f.Offset, f.Type
	}
	if !out.ConvertibleTo(c.outputType) {
		return nil, fmt.Errorf("kcp-go KCP.output: %v, not a func([]byte, int)", c.outputType)
	}
	rf, _ := kt.FieldByName("snd_queue") // resolveKCPMem checked the three rings
	c.ringType = rf.Type.Elem()
	if err := refsOnly(c.ringType, "elements"); err != nil {
		return nil, err
	}
	hf, _ := kt.FieldByName("rcv_buf")
	c.heapType = hf.Type.Elem()
	if err := refsOnly(c.heapType, "segments", "marks"); err != nil {
		return nil, err
	}
	return &c, nil
}

// holdsRefs reports whether a value of type t holds a pointer, slice,
// map, func, channel, interface or string.
func holdsRefs(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Slice, reflect.Map, reflect.Func,
		reflect.Chan, reflect.Interface, reflect.String:
		return true
	case reflect.Array:
		return t.Len() > 0 && holdsRefs(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsRefs(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// ring is the RingBuffer at offset off of the KCP at p.
func (m *kcpMemLayout) ring(p unsafe.Pointer, i int) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Add(p, m.rings[i]))
}

// ringEntries is the capacity of ring r in entries, and whether it is empty.
func (m *kcpMemLayout) ringEntries(r unsafe.Pointer) (n int, empty bool) {
	head := *(*int)(unsafe.Add(r, m.ringHead))
	tail := *(*int)(unsafe.Add(r, m.ringTail))
	return (*sliceHeader)(unsafe.Add(r, m.ringElems)).len, head == tail
}

// trimRing gives an empty ring that has more than RingEntries entries
// a new array of that size. An empty ring's entries hold no data (Pop and
// Clear zero them), so nothing is lost.
func (m *kcpMemLayout) trimRing(r unsafe.Pointer) {
	if n, empty := m.ringEntries(r); !empty || n <= RingEntries {
		return
	}
	*(*int)(unsafe.Add(r, m.ringHead)) = 0
	*(*int)(unsafe.Add(r, m.ringTail)) = 0
	reflect.NewAt(m.segsType, unsafe.Add(r, m.ringElems)).Elem().Set(reflect.MakeSlice(m.segsType, RingEntries, RingEntries))
}

// ringView is ring r's entries and its head and tail indexes: the
// segments it holds are entries head, head+1, ... (mod len) up to tail.
func (m *kcpMemLayout) ringView(r unsafe.Pointer) (elems *sliceHeader, head, tail int) {
	return (*sliceHeader)(unsafe.Add(r, m.ringElems)), *(*int)(unsafe.Add(r, m.ringHead)), *(*int)(unsafe.Add(r, m.ringTail))
}

// ringLen is the number of segments ring r holds (RingBuffer.Len).
func (m *kcpMemLayout) ringLen(r unsafe.Pointer) int {
	head := *(*int)(unsafe.Add(r, m.ringHead))
	tail := *(*int)(unsafe.Add(r, m.ringTail))
	if head <= tail {
		return tail - head
	}
	return (*sliceHeader)(unsafe.Add(r, m.ringElems)).len - head + tail
}

// kcpRecvState reads k's receive side: rcvNxt, the next sn it expects;
// end, the end of the window it advertises (rcv_nxt + rcv_wnd less the
// segments waiting in its receive queue, which is what its una and wnd

// kcpSchedLayout locates the fields of kcp-go's segment that kcpSendWork,
// ResentOnTimeout and HoldTimeouts read.
type kcpSchedLayout struct {
	size                           uintptr // sizeof(segment)
	resendts, xmit, fastack, acked uintptr // all uint32
	sn, ts                         uintptr // uint32
}

// kcpSched is this kcp-go version's segment layout, or nil (kcpSchedErr says
// why). Computed once at init and never written after.
var kcpSched, kcpSchedErr = resolveKCPSched(kcpMem)

func resolveKCPSched(m *kcpMemLayout) (*kcpSchedLayout, error) {
	if m == nil {
		return nil, fmt.Errorf("kcp-go layout unknown: %v", kcpMemErr)
	}
	st := m.segsType.Elem()
	l := kcpSchedLayout{size: st.Size()}
	u32 := reflect.TypeFor[uint32]()
	for _, f := range []struct {
		name string
		off  *uintptr
	}{{"resendts", &l.resendts}, {"xmit", &l.xmit}, {"fastack", &l.fastack}, {"acked", &l.acked}, {"sn", &l.sn}, {"ts", &l.ts}} {
		sf, ok := st.FieldByName(f.name)
		if !ok || len(sf.Index) != 1 || sf.Type != u32 {
			return nil, fmt.Errorf("kcp-go segment.%s: missing or not a uint32", f.name)
		}
		*f.off = sf.Offset
	}
	return &l, nil
}

// kcpSendWork reports when k's send side next needs a flush, in KCP
// milliseconds (kcpNow's clock): at (valid when has) is the earliest
// retransmission time of an unacknowledged segment in the send buffer.
// tick means k needs KCP's interval tick instead: segments wait in the send
// queue for window, a segment was never sent or is marked for fast
// retransmission, or the layout is unknown. Cost: one pass over the send
