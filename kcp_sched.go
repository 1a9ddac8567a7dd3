package uxp

import (
	"fmt"
	"reflect"
	"unsafe"

	kcp "github.com/xtaci/kcp-go/v5"
)

// When a lane's KCP next has work: the real deadline, not KCP's tick.
//
// kcp-go's Check caps its answer at the KCP interval (10 ms), and Update
// flushes the whole send buffer on every tick while anything is
// unacknowledged. Driven that way, a session waiting for an ACK costs 100
// full flushes a second, and 10,000 such sessions are a million: at 10k
// sessions that work kept the shards behind, the queued ACKs that would
// have stopped it were dropped as Overload, and the server collapsed
// (issue 18). A data segment in kcp-go's send buffer needs a flush only
// when (a) it has never been sent, (b) its retransmission time (resendts)
// has come, or (c) it was marked for fast or early retransmission
// (fastack): kcpSendWork reads exactly that from the send buffer, so a
// lane with data in flight sleeps until its earliest retransmission
// timeout (or its tail probe, probe.go) instead of ticking.
//
// It reads the unexported segment fields resendts, xmit, fastack and acked
// in the snd_buf ring whose layout kcp_mem.go resolves; kcpSchedLayout
// resolves the segment's own offsets once, with reflect, and checks their
// types. With another kcp-go version (either layout nil) kcpSendWork
// reports tick, the old behaviour: correct, only more timer work.
// TestKCPSchedLayout fails on such a version so an upgrade is noticed.

// kcpSchedLayout locates the fields of kcp-go's segment that kcpSendWork
// reads.
type kcpSchedLayout struct {
	size                           uintptr // sizeof(segment)
	resendts, xmit, fastack, acked uintptr // all uint32
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
	}{{"resendts", &l.resendts}, {"xmit", &l.xmit}, {"fastack", &l.fastack}, {"acked", &l.acked}} {
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
// buffer, the segments in flight.
func kcpSendWork(k *kcp.KCP) (at uint32, has, tick bool) {
	m, sl := kcpMem, kcpSched
	if m == nil || sl == nil {
		return 0, false, k.WaitSnd() > 0
	}
	p := unsafe.Pointer(k)
	if _, empty := m.ringEntries(m.ring(p, 0)); !empty {
		return 0, false, true // snd_queue: waits for window
	}
	r := m.ring(p, 2) // snd_buf
	head := *(*int)(unsafe.Add(r, m.ringHead))
	tail := *(*int)(unsafe.Add(r, m.ringTail))
	elems := (*sliceHeader)(unsafe.Add(r, m.ringElems))
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

// laneSendWork is kcpSendWork for a lane's KCP, or the old tick while
// anything is unacknowledged under the testKCPTick knob.
func (c *Conn) laneSendWork(l *lane) (at uint32, has, tick bool) {
	if c.ep.set.testKCPTick {
		return 0, false, l.arq.WaitSnd() > 0
	}
	return kcpSendWork(l.arq)
}
