package kcpx

import (
	"reflect"
	"unsafe"

	kcp "github.com/xtaci/kcp-go/v5"
)

// RecvState reads k's receive side: rcvNxt, the next sn it expects; end,
// the end of the window it advertises (rcv_nxt + rcv_wnd less the segments
// waiting in its receive queue, which is what its una and wnd tell the
// peer); and held, the segments it stores (receive queue and receive heap).
// ok is false on the fallback path.
func (f *Factory) RecvState(k *kcp.KCP) (rcvNxt, end uint32, held int, ok bool) {
	if f.err != nil {
		return 0, 0, 0, false
	}
	m, p := kcpMem, unsafe.Pointer(k)
	rcvNxt = *(*uint32)(unsafe.Add(p, m.rcvNxt))
	wnd := int(*(*uint32)(unsafe.Add(p, m.rcvWnd)))
	queued := m.ringLen(m.ring(p, 1)) // rcv_queue
	h := *(*unsafe.Pointer)(unsafe.Add(p, m.rcvBuf))
	held = queued + (*sliceHeader)(unsafe.Add(h, m.heapSegs)).len
	return rcvNxt, rcvNxt + uint32(max(0, wnd-queued)), held, true
}

// Stored reports whether k's receive heap holds segment sn (kcp-go's
// segmentHeap.Has). False on the fallback path.
func (f *Factory) Stored(k *kcp.KCP, sn uint32) bool {
	if f.err != nil {
		return false
	}
	h := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(k), kcpMem.rcvBuf))
	_, ok := (*(*map[uint32]struct{})(unsafe.Add(h, kcpMem.heapMarks)))[sn]
	return ok
}

// Quiet reports whether k holds nothing to send, acknowledge or deliver:
// its rings, receive heap and ACK list are empty. False on the fallback
// path.
func (f *Factory) Quiet(k *kcp.KCP) bool {
	if f.err != nil {
		return false
	}
	m, p := kcpMem, unsafe.Pointer(k)
	for i := range m.rings {
		if _, empty := m.ringEntries(m.ring(p, i)); !empty {
			return false
		}
	}
	h := *(*unsafe.Pointer)(unsafe.Add(p, m.rcvBuf))
	return (*sliceHeader)(unsafe.Add(h, m.heapSegs)).len == 0 &&
		(*sliceHeader)(unsafe.Add(p, m.acklist)).len == 0
}

// Grown reports whether k holds more memory than New left it with: a ring
// past RingEntries, or a receive heap or ACK list past MinEntries. False
// on the fallback path.
func (f *Factory) Grown(k *kcp.KCP) bool {
	if f.err != nil {
		return false
	}
	m, p := kcpMem, unsafe.Pointer(k)
	for i := range m.rings {
		if n, _ := m.ringEntries(m.ring(p, i)); n > RingEntries {
			return true
		}
	}
	h := *(*unsafe.Pointer)(unsafe.Add(p, m.rcvBuf))
	return (*sliceHeader)(unsafe.Add(h, m.heapSegs)).cap > MinEntries ||
		(*sliceHeader)(unsafe.Add(p, m.acklist)).cap > MinEntries
}

// Trim gives a quiet KCP's grown memory back: minimum rings, and a fresh
// receive heap and ACK list. The receive heap's map of sequence numbers
// has had as many entries as its slice (segmentHeap Push and Pop keep them
// in step), so it is replaced along with a slice that grew past the
// minimum: a map never shrinks. A no-op on the fallback path.
func (f *Factory) Trim(k *kcp.KCP) {
	if f.err != nil || !f.Quiet(k) {
		return
	}
	m, p := kcpMem, unsafe.Pointer(k)
	for i := range m.rings {
		m.trimRing(m.ring(p, i))
	}
	h := *(*unsafe.Pointer)(unsafe.Add(p, m.rcvBuf))
	if (*sliceHeader)(unsafe.Add(h, m.heapSegs)).cap > MinEntries {
		reflect.NewAt(m.segsType, unsafe.Add(h, m.heapSegs)).Elem().SetZero()
		reflect.NewAt(m.marksType, unsafe.Add(h, m.heapMarks)).Elem().Set(reflect.MakeMap(m.marksType))
	}
	if (*sliceHeader)(unsafe.Add(p, m.acklist)).cap > MinEntries {
		reflect.NewAt(m.ackType, unsafe.Add(p, m.acklist)).Elem().SetZero()
	}
}

// SendWork reports when k's send side next needs a flush, in KCP
// milliseconds (Now's clock): at (valid when has) is the earliest
// retransmission time of an unacknowledged segment in the send buffer.
// tick means k needs KCP's interval tick instead: segments wait in the
// send queue for window, a segment was never sent or is marked for fast
// retransmission, or (the fallback path) anything is unacknowledged. Cost:
// one pass over the send buffer, the segments in flight.
func (f *Factory) SendWork(k *kcp.KCP) (at uint32, has, tick bool) {
	return f.sendWork(k, true)
}

// SendWorkSent is SendWork without the send queue: segments waiting there
// for window do not ask for the tick (the caller wakes for them itself).
func (f *Factory) SendWorkSent(k *kcp.KCP) (at uint32, has, tick bool) {
	return f.sendWork(k, false)
}

func (f *Factory) sendWork(k *kcp.KCP, queue bool) (at uint32, has, tick bool) {
	if f.err != nil {
		return 0, false, k.WaitSnd() > 0
	}
	m, sl, p := kcpMem, kcpSched, unsafe.Pointer(k)
	if _, empty := m.ringEntries(m.ring(p, 0)); queue && !empty {
		return 0, false, true // snd_queue: waits for window
	}
	elems, head, tail := m.ringView(m.ring(p, 2)) // snd_buf
	n := elems.len
	for i := head; i != tail; i = (i + 1) % n {
		seg := unsafe.Add(elems.data, uintptr(i)*sl.size)
		if *(*uint32)(unsafe.Add(seg, sl.acked)) != 0 {
			continue
		}
		fa := *(*uint32)(unsafe.Add(seg, sl.fastack))
		if *(*uint32)(unsafe.Add(seg, sl.xmit)) == 0 || (fa > 0 && fa != 0xFFFFFFFF) {
			return 0, false, true
		}
		ts := *(*uint32)(unsafe.Add(seg, sl.resendts))
		if !has || int32(ts-at) < 0 {
			at, has = ts, true
		}
	}
	return at, has, false
}

// View is what the memory tricks manage in one KCP, for tests. ok is false
// when the layout is unknown.
type View struct {
	Rings    [3]int // entries of snd_queue, rcv_queue, snd_buf
	HeapCap  int    // capacity of the receive heap's slice
	AckCap   int    // capacity of the ACK list
	Buf      *byte  // the flush buffer's array
	BufLen   int
	BufCap   int
	RecvSegs int // segments in the receive queue and receive heap
}

// Inspect reads k's View (tests).
func Inspect(k *kcp.KCP) (v View, ok bool) {
	m := kcpMem
	if m == nil {
		return v, false
	}
	p := unsafe.Pointer(k)
	for i := range m.rings {
		v.Rings[i], _ = m.ringEntries(m.ring(p, i))
	}
	h := *(*unsafe.Pointer)(unsafe.Add(p, m.rcvBuf))
	v.HeapCap = (*sliceHeader)(unsafe.Add(h, m.heapSegs)).cap
	v.AckCap = (*sliceHeader)(unsafe.Add(p, m.acklist)).cap
	b := (*sliceHeader)(unsafe.Add(p, m.buffer))
	v.Buf, v.BufLen, v.BufCap = (*byte)(b.data), b.len, b.cap
	v.RecvSegs = m.ringLen(m.ring(p, 1)) + (*sliceHeader)(unsafe.Add(h, m.heapSegs)).len
	return v, true
}

// MinRTO returns k's lower bound on its retransmission timeout, in
// milliseconds (KCP.rx_minrto: 30 in no-delay mode, else 100); ok is
// false on the fallback path.
func (f *Factory) MinRTO(k *kcp.KCP) (ms uint32, ok bool) {
	if f.err != nil {
		return 0, false
	}
	return *(*uint32)(unsafe.Add(unsafe.Pointer(k), kcpMem.rxMinRTO)), true
}

// SetMinRTO sets k's lower bound on its retransmission timeout to ms
// milliseconds (KCP.rx_minrto, which kcp-go's NoDelay sets to one of two
// values only), and raises its current timeout to it at once (KCP
// recomputes it from the bound at its next RTT sample). Segments already
// sent keep the timeout they were sent with. A no-op on the fallback
// path.
func (f *Factory) SetMinRTO(k *kcp.KCP, ms uint32) {
	if f.err != nil {
		return
	}
	p := unsafe.Pointer(k)
	*(*uint32)(unsafe.Add(p, kcpMem.rxMinRTO)) = ms
	if rto := (*uint32)(unsafe.Add(p, kcpMem.rxRTO)); *rto < ms {
		*rto = ms
	}
}

// ResentOnTimeout reports, for segment sn of k, which k's flush is
// sending again (call it from the output callback), whether its
// retransmission timeout resends it: kcp-go's flush resets the segment's
// fast-ACK count to 0 there, and sets it to 0xFFFFFFFF for a fast or
// early retransmission. ok is false when sn is not in the send buffer,
// and on the fallback path. Cost: constant (the send buffer holds
// consecutive sns from its head).
func (f *Factory) ResentOnTimeout(k *kcp.KCP, sn uint32) (timeout, ok bool) {
	if f.err != nil {
		return false, false
	}
	m, sl := kcpMem, kcpSched
	r := m.ring(unsafe.Pointer(k), 2) // snd_buf
	elems, head, tail := m.ringView(r)
	n := elems.len
	if head == tail || n == 0 {
		return false, false
	}
	first := *(*uint32)(unsafe.Add(elems.data, uintptr(head)*sl.size+sl.sn))
	off := int(sn - first)
	if int32(sn-first) < 0 || off >= m.ringLen(r) {
		return false, false
	}
	seg := unsafe.Add(elems.data, uintptr((head+off)%n)*sl.size)
	if *(*uint32)(unsafe.Add(seg, sl.sn)) != sn {
		return false, false
	}
	return *(*uint32)(unsafe.Add(seg, sl.fastack)) == 0, true
}

// LimitNew bounds what k's following flushes move from its send queue
// into flight: at most n new segments beyond those in flight now (kcp-go's
// flush sends a queued segment only while snd_nxt < snd_una + snd_wnd),
// and never more than wnd in flight, the window k was tuned with. n < 0
// restores wnd. It returns snd_nxt, the next sequence number k assigns,
// so that the caller can count the segments a flush sent; ok is false on
// the fallback path, where it does nothing.
func (f *Factory) LimitNew(k *kcp.KCP, n int, wnd uint32) (nxt uint32, ok bool) {
	if f.err != nil {
		return 0, false
	}
	m, p := kcpMem, unsafe.Pointer(k)
	una := *(*uint32)(unsafe.Add(p, m.sndUna))
	nxt = *(*uint32)(unsafe.Add(p, m.sndNxt))
	w := wnd
	if n >= 0 {
		w = min(wnd, nxt-una+uint32(n))
	}
	*(*uint32)(unsafe.Add(p, m.sndWnd)) = w
	return nxt, true
}

// SendNext returns k's snd_nxt; ok is false on the fallback path.
func (f *Factory) SendNext(k *kcp.KCP) (nxt uint32, ok bool) {
	if f.err != nil {
		return 0, false
	}
	return *(*uint32)(unsafe.Add(unsafe.Pointer(k), kcpMem.sndNxt)), true
}

// Unsent is the number of segments k's send queue holds: given to Send
// and not yet moved into flight by a flush. 0 on the fallback path.
func (f *Factory) Unsent(k *kcp.KCP) int {
	if f.err != nil {
		return 0
	}
	return kcpMem.ringLen(kcpMem.ring(unsafe.Pointer(k), 0))
}

// HoldTimeouts lets the caller postpone the retransmission timeouts of
// k's send buffer that fall due by horizon (KCP milliseconds): for each
// segment sent and unacknowledged whose resendts is at or before horizon,
// it calls hold with the segment's sn and ts (the KCP timestamp of k's
// last copy of it: copies sent outside k, such as tail-loss probes, do
// not change it); when hold returns ok, the
// segment's resendts becomes until (its timeout backoff, rto, is left as
// it is). A segment due for fast or early retransmission is still resent
// on those grounds: they come first in kcp-go's flush. It returns the
// earliest resendts of the segments in flight afterwards (ok false when
// none is). Call it right before a flush, on k's goroutine. Cost: one
// pass over the segments in flight, and a call per segment due. A no-op
// on the fallback path.
func (f *Factory) HoldTimeouts(k *kcp.KCP, horizon uint32, hold func(sn, ts uint32) (until uint32, ok bool)) (next uint32, ok bool) {
	if f.err != nil {
		return 0, false
	}
	m, sl := kcpMem, kcpSched
	elems, head, tail := m.ringView(m.ring(unsafe.Pointer(k), 2)) // snd_buf
	n := elems.len
	for i := head; i != tail; i = (i + 1) % n {
		seg := unsafe.Add(elems.data, uintptr(i)*sl.size)
		if *(*uint32)(unsafe.Add(seg, sl.acked)) != 0 || *(*uint32)(unsafe.Add(seg, sl.xmit)) == 0 {
			continue
		}
		due := (*uint32)(unsafe.Add(seg, sl.resendts))
		if int32(*due-horizon) <= 0 {
			if until, held := hold(*(*uint32)(unsafe.Add(seg, sl.sn)), *(*uint32)(unsafe.Add(seg, sl.ts))); held {
				*due = until
			}
		}
		if !ok || int32(*due-next) < 0 {
			next, ok = *due, true
		}
	}
	return next, ok
}
