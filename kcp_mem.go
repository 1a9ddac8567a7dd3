package uxp

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"
	"unsafe"

	kcp "github.com/xtaci/kcp-go/v5"
)

// Per-session memory of the lanes' KCPs.
//
// kcp-go v5.6.72's NewKCP allocates, for every state machine, three
// 64-entry segment rings (snd_queue, rcv_queue, snd_buf: 4 KiB each) and a
// flush buffer of (MTU+24)×3 bytes, which SetMtu allocates once more: about
// 17 KB before the first message, four times what the rest of a session
// holds. kcp-go offers no way to size them, and it is a required dependency
// pinned at that version and used unmodified, so newLaneKCP reaches into
// the unexported fields (as kcp_link.go does for flush):
//
//   - The rings start with kcpRingEntries (2) entries, room for one
//     segment. RingBuffer.Push grows a full ring by itself (to 8, then
//     doubling), so a burst still gets the room it needs.
//   - The flush buffer is the shard's, one for all its sessions
//     (kcpShardMem). This is safe because (1) flush, the only reader and
//     writer of KCP.buffer, runs only on the shard goroutine that owns the
//     session (pump, laneInput, the timers); (2) the output callback
//     (laneKCPOutput) uses the bytes only until it returns: sendFrameTo
//     seals a copy into the shard's send batch, and emitFrame copies the
//     frame to frameScratch before FEC; and (3) nothing in that callback
//     starts another KCP's flush, so two flushes never interleave.
//   - A lane whose KCP is idle (nothing to send, acknowledge or deliver) for
//     kcpTrimDelay gets back to that baseline: rings, receive heap and ACK
//     list that grew past the minimum are replaced by minimum-sized ones,
//     as are the lane's own inflight list and delivery tracker
//     (laneTrimDeadline). The delay keeps a session that sends bursts at a
//     steady rate from shrinking and regrowing on every burst.
//
//   - A new lane's KCP is a copy of the shard's prototype (kcpClone), a
//     KCP made once with NewKCP, the endpoint's tuning and kcpSlim, and
//     never used: the copy gets its own conv, output callback, rings,
//     receive heap and ACK list. NewKCP with the tuning allocates about
//     25 KB (BenchmarkLaneKCP) that kcpSlim then drops: the rings and two
//     flush buffers, since SetMtu replaces the first. When thousands of
//     clients join at once (a server's first burst, 50,000 in the bench's
//     scale case) that garbage kept the collector running and stalled the
//     workers for tens of milliseconds at a time. A copy allocates about
//     0.9 KB.
//
// The field layout is resolved once, with reflect (kcpMem). If anything
// differs from what this file expects (another kcp-go version), the layout
// is nil and KCPs keep kcp-go's own allocation: more memory, same
// behaviour. TestKCPMemLayout fails on such a version, so an upgrade is
// caught in CI rather than silently costing memory.

/* Implementation constants */
const (
	// kcpTrimDelay is how long a lane's KCP stays idle before the memory
	// it grew is given back.
	kcpTrimDelay = time.Second

	// kcpRingEntries is the size, in entries, the KCP's rings start with
	// and are trimmed back to. A ring holds one entry less than its size,
	// so 2 holds one segment: all a session that sends or receives one
	// small message at a time needs. A ring that fills grows to
	// kcp.RINGBUFFER_MIN (8), then doubles (kcp-go RingBuffer.grow).
	kcpRingEntries = 2

	// kcpMinEntries is the capacity, in entries, past which the KCP's
	// receive heap and ACK list and the lane's inflight list count as
	// grown, and are dropped when the lane is quiet.
	kcpMinEntries = kcp.RINGBUFFER_MIN

	// laneScratchKeep bounds the lane message scratch buffer a session
	// keeps while idle: a message larger than this leaves a buffer that
	// laneTrimDeadline drops.
	laneScratchKeep = 2048
)

// kcpMemLayout locates the fields of a kcp.KCP that kcp_mem.go resizes:
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
}

// kcpMem is the layout of this kcp-go version's KCP, or nil (with
// kcpMemErr saying why) when it is not the one kcp_mem.go knows. Computed
// once at init and never written after.
var kcpMem, kcpMemErr = resolveKCPMem(reflect.TypeFor[kcp.KCP]())

// sliceHeader is the runtime layout of a slice, for reading lengths.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// resolveKCPMem finds and checks, in kt (kcp.KCP), every field kcp_mem.go
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
	}{{"rcv_nxt", &m.rcvNxt}, {"rcv_wnd", &m.rcvWnd}} {
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
// kcp_mem.go layout is m, and checks that no other field holds a
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
				return fmt.Errorf("kcp-go %s.%s: holds references kcp_mem.go does not copy", t.Name(), f.Name)
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

// kcpShardMem is a shard's share of its sessions' KCP memory.
type kcpShardMem struct {
	flushBuf []byte   // every KCP's flush buffer (see above)
	proto    *kcp.KCP // kcpClone's prototype, made on first use
	warned   bool     // the missing layout was logged
	off      bool     // tests: leave new KCPs as kcp-go makes them
}

// kcpClone returns a new KCP for conv and out, made by copying the
// shard's prototype, or nil when kcp_mem.go cannot (unknown layout, or
// off): the caller makes one with NewKCP. The copy is what NewKCP,
// tuneKCP and kcpSlim would make, without NewKCP's garbage.
func (s *shard) kcpClone(conv uint32, out func([]byte, int)) *kcp.KCP {
	m, cl := kcpMem, kcpCloneMem
	if m == nil || cl == nil || s.kcpMem.off {
		return nil
	}
	if s.kcpMem.proto == nil {
		proto := kcp.NewKCP(0, func([]byte, int) {})
		s.ep.set.tuneKCP(proto)
		s.kcpSlim(proto)
		s.kcpMem.proto = proto
	}
	k := new(kcp.KCP)
	*k = *s.kcpMem.proto
	p := unsafe.Pointer(k)
	*(*uint32)(unsafe.Add(p, cl.conv)) = conv
	reflect.NewAt(cl.outputType, unsafe.Add(p, cl.output)).Elem().Set(reflect.ValueOf(out).Convert(cl.outputType))
	reflect.NewAt(cl.logType, unsafe.Add(p, cl.log)).Elem().SetZero()
	for _, off := range m.rings {
		r := reflect.New(cl.ringType).UnsafePointer() // head and tail 0: empty
		reflect.NewAt(m.segsType, unsafe.Add(r, m.ringElems)).Elem().Set(reflect.MakeSlice(m.segsType, kcpRingEntries, kcpRingEntries))
		*(*unsafe.Pointer)(unsafe.Add(p, off)) = r
	}
	h := reflect.New(cl.heapType).UnsafePointer() // no segments yet
	reflect.NewAt(m.marksType, unsafe.Add(h, m.heapMarks)).Elem().Set(reflect.MakeMap(m.marksType))
	*(*unsafe.Pointer)(unsafe.Add(p, m.rcvBuf)) = h
	reflect.NewAt(m.ackType, unsafe.Add(p, m.acklist)).Elem().SetZero()
	*(*[]byte)(unsafe.Add(p, m.buffer)) = s.kcpMem.flushBuf // as kcpSlim gave the prototype
	return k
}

// kcpSlim puts a new KCP of the shard's on minimum memory: minimum rings
// and the shard's flush buffer. Call it right after NewKCP and SetMtu.
func (s *shard) kcpSlim(k *kcp.KCP) {
	m := kcpMem
	if s.kcpMem.off {
		return
	}
	if m == nil {
		if !s.kcpMem.warned {
			s.kcpMem.warned = true
			s.ep.log.Debug("uxp: unknown kcp-go layout, KCPs keep their own buffers", "err", kcpMemErr)
		}
		return
	}
	s.kcpShareFlushBuf(k)
	p := unsafe.Pointer(k)
	for _, off := range m.rings {
		m.trimRing(*(*unsafe.Pointer)(unsafe.Add(p, off)))
	}
}

// kcpShareFlushBuf gives k the shard's flush buffer in place of its own
// (after NewKCP or SetMtu allocated one), growing it if k needs more.
func (s *shard) kcpShareFlushBuf(k *kcp.KCP) {
	m := kcpMem
	if m == nil || s.kcpMem.off {
		return
	}
	buf := (*[]byte)(unsafe.Add(unsafe.Pointer(k), m.buffer))
	if need := len(*buf); len(s.kcpMem.flushBuf) < need {
		s.kcpMem.flushBuf = make([]byte, need)
	}
	*buf = s.kcpMem.flushBuf
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

// trimRing gives an empty ring that has more than kcpRingEntries entries
// a new array of that size. An empty ring's entries hold no data (Pop and
// Clear zero them), so nothing is lost.
func (m *kcpMemLayout) trimRing(r unsafe.Pointer) {
	if n, empty := m.ringEntries(r); !empty || n <= kcpRingEntries {
		return
	}
	*(*int)(unsafe.Add(r, m.ringHead)) = 0
	*(*int)(unsafe.Add(r, m.ringTail)) = 0
	reflect.NewAt(m.segsType, unsafe.Add(r, m.ringElems)).Elem().Set(reflect.MakeSlice(m.segsType, kcpRingEntries, kcpRingEntries))
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
// tell the peer); and held, the segments it stores (receive queue and
// receive heap), each in a buffer of kcpSegBuf bytes. ok is false when the
// layout is unknown.
func kcpRecvState(k *kcp.KCP) (rcvNxt, end uint32, held int, ok bool) {
	m := kcpMem
	if m == nil {
		return 0, 0, 0, false
	}
	p := unsafe.Pointer(k)
	rcvNxt = *(*uint32)(unsafe.Add(p, m.rcvNxt))
	wnd := int(*(*uint32)(unsafe.Add(p, m.rcvWnd)))
	queued := m.ringLen(m.ring(p, 1)) // rcv_queue
	h := *(*unsafe.Pointer)(unsafe.Add(p, m.rcvBuf))
	held = queued + (*sliceHeader)(unsafe.Add(h, m.heapSegs)).len
	return rcvNxt, rcvNxt + uint32(max(0, wnd-queued)), held, true
}

// kcpStored reports whether k's receive heap holds segment sn (kcp-go's
// segmentHeap.Has): a copy of it adds no memory. The layout must be known.
func kcpStored(k *kcp.KCP, sn uint32) bool {
	m := kcpMem
	h := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(k), m.rcvBuf))
	_, ok := (*(*map[uint32]struct{})(unsafe.Add(h, m.heapMarks)))[sn]
	return ok
}

// kcpQuiet reports whether k holds nothing to send, acknowledge or
// deliver: its rings, receive heap and ACK list are empty.
func kcpQuiet(k *kcp.KCP) bool {
	m := kcpMem
	if m == nil {
		return false
	}
	p := unsafe.Pointer(k)
	for i := range m.rings {
		if _, empty := m.ringEntries(m.ring(p, i)); !empty {
			return false
		}
	}
	h := *(*unsafe.Pointer)(unsafe.Add(p, m.rcvBuf))
	return (*sliceHeader)(unsafe.Add(h, m.heapSegs)).len == 0 &&
		(*sliceHeader)(unsafe.Add(p, m.acklist)).len == 0
}

// kcpGrown reports whether k holds more memory than kcpSlim left it with.
func kcpGrown(k *kcp.KCP) bool {
	m := kcpMem
	if m == nil {
		return false
	}
	p := unsafe.Pointer(k)
	for i := range m.rings {
		if n, _ := m.ringEntries(m.ring(p, i)); n > kcpRingEntries {
			return true
		}
	}
	h := *(*unsafe.Pointer)(unsafe.Add(p, m.rcvBuf))
	return (*sliceHeader)(unsafe.Add(h, m.heapSegs)).cap > kcpMinEntries ||
		(*sliceHeader)(unsafe.Add(p, m.acklist)).cap > kcpMinEntries
}

// kcpTrim gives a quiet KCP's grown memory back: minimum rings, and a
// fresh receive heap and ACK list. The receive heap's map of sequence
// numbers has had as many entries as its slice (segmentHeap Push and Pop
// keep them in step), so it is replaced along with a slice that grew past
// the minimum: a map never shrinks.
func kcpTrim(k *kcp.KCP) {
	m := kcpMem
	if m == nil || !kcpQuiet(k) {
		return
	}
	p := unsafe.Pointer(k)
	for i := range m.rings {
		m.trimRing(m.ring(p, i))
	}
	h := *(*unsafe.Pointer)(unsafe.Add(p, m.rcvBuf))
	if (*sliceHeader)(unsafe.Add(h, m.heapSegs)).cap > kcpMinEntries {
		reflect.NewAt(m.segsType, unsafe.Add(h, m.heapSegs)).Elem().SetZero()
		reflect.NewAt(m.marksType, unsafe.Add(h, m.heapMarks)).Elem().Set(reflect.MakeMap(m.marksType))
	}
	if (*sliceHeader)(unsafe.Add(p, m.acklist)).cap > kcpMinEntries {
		reflect.NewAt(m.ackType, unsafe.Add(p, m.acklist)).Elem().SetZero()
	}
}

// laneQuiet reports whether a lane has nothing in progress: no message
// waiting, in flight or being received, no ACK owed.
func laneQuiet(l *lane) bool {
	return l.arq != nil && !l.ackPending && len(l.backlog) == 0 && len(l.inflight) == 0 &&
		kcpQuiet(l.arq)
}

// laneGrown reports whether a lane holds memory a quiet lane does without.
func (c *Conn) laneGrown(l *lane) bool {
	return kcpGrown(l.arq) || cap(l.inflight) > kcpMinEntries ||
		(len(l.lat.ring) > trackerMinSlots && l.lat.n == 0) || cap(c.laneScratch) > laneScratchKeep
}

// laneTrimDeadline runs the lane's memory trimming and returns when it
// next needs the session's timer (zero: not at all). A lane that grew
// past its baseline and is quiet is armed for now+kcpTrimDelay; any
// activity in the meantime disarms it; once the time has come, still
// quiet, the lane is trimmed. It is called from reschedule, after every
// event, via lanesDeadline.
func (c *Conn) laneTrimDeadline(l *lane, now time.Time) time.Time {
	if l.arq == nil || !laneQuiet(l) || !c.laneGrown(l) {
		l.trimAt = 0
		return time.Time{}
	}
	ms := uint32(now.UnixMilli())
	wait := time.Duration(int32(l.trimAt-ms)) * time.Millisecond
	if l.trimAt == 0 || wait > kcpTrimDelay {
		// Not armed yet (or the clock stepped back): arm.
		l.trimAt = max(1, ms+uint32(kcpTrimDelay/time.Millisecond))
		return now.Add(kcpTrimDelay)
	}
	if wait > 0 {
		return now.Add(wait)
	}
	l.trimAt = 0
	kcpTrim(l.arq)
	if cap(l.inflight) > kcpMinEntries {
		l.inflight = nil
	}
	if len(l.lat.ring) > trackerMinSlots && l.lat.n == 0 {
		l.lat.ring, l.lat.head = nil, 0 // sent makes a small one
	}
	if cap(c.laneScratch) > laneScratchKeep {
		c.laneScratch = nil
	}
	return time.Time{}
}
