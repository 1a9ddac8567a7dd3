// Package kcpx is the only package that reaches into kcp-go's internals:
// linknames (go:linkname) to the unexported (*KCP).flush, currentMs and
// refTime, and unsafe and reflect on KCP's unexported fields. The
// reliability layer (internal/arq) uses kcp-go's raw KCP only through a
// Factory (one per shard) and Ms, the one conversion of a time to KCP's
// milliseconds.
//
// # Version gate
//
// A linkname is not type-checked and a field layout is not part of kcp-go's
// API, so the tricks run only when the build's kcp-go version
// (runtime/debug.ReadBuildInfo) is on the audited list (Audited) and every
// field this package touches is where it expects. Otherwise a Factory falls
// back to kcp-go's public API: Flush is KCP.Update (output at the interval
// tick), KCPs get NewKCP's own memory, SendWork asks for the interval tick
// while anything is unacknowledged, and Now reads Check of a KCP never
// updated. Correct, with more latency, memory and timer work; never
// undefined behaviour. FastPath says which one runs, and why not: the
// caller logs it and reports it in its statistics.
//
// # Memory
//
// kcp-go v5.6.72's NewKCP allocates, for every state machine, three
// 64-entry segment rings (snd_queue, rcv_queue, snd_buf: 4 KiB each) and a
// flush buffer of (MTU+24)×3 bytes, which SetMtu allocates once more: about
// 17 KB before the first message. kcp-go offers no way to size them, so on
// the fast path:
//
//   - The rings start with RingEntries (2) entries, room for one segment.
//     RingBuffer.Push grows a full ring by itself (to 8, then doubling), so
//     a burst still gets the room it needs.
//   - The flush buffer is the Factory's, one for all its KCPs. This is safe
//     because (1) flush, the only reader and writer of KCP.buffer, runs only
//     on the goroutine that owns the Factory; (2) the output callback uses
//     the bytes only until it returns (the root seals a copy into its send
//     batch); (3) nothing in that callback starts another KCP's flush, so two
//     flushes never interleave; and (4) flush keeps no bytes in the buffer
//     between calls (audited per version; TestOutputDoesNotOutliveCallback).
//   - Trim gives a quiet KCP's grown memory back.
//   - A new KCP is a copy of the Factory's prototype (made once with NewKCP,
//     the tuning and the slim memory, and never used): the copy gets its own
//     conv, output callback, rings, receive heap and ACK list. NewKCP with
//     the tuning allocates about 25 KB that would be dropped; a copy
//     allocates about 0.9 KB.
//
// The field layout is resolved once, with reflect. TestLayout fails on a
// kcp-go whose layout changed, so an upgrade is caught in CI.
//
// # Scheduling
//
// kcp-go's Check caps its answer at the KCP interval (10 ms), and Update
// flushes the whole send buffer on every tick while anything is
// unacknowledged. SendWork reads, from the send buffer, when a flush is
// really needed: a segment never sent, one marked for fast retransmission,
// or the earliest retransmission time (resendts).
package kcpx

import (
	"bytes"
	"reflect"
	"unsafe"

	kcp "github.com/xtaci/kcp-go/v5"
)

const (
	// RingEntries is the size, in entries, the KCP's rings start with and
	// are trimmed back to. A ring holds one entry less than its size, so 2
	// holds one segment. A ring that fills grows to kcp.RINGBUFFER_MIN (8),
	// then doubles (kcp-go RingBuffer.grow).
	RingEntries = 2

	// MinEntries is the capacity, in entries, past which the KCP's receive
	// heap and ACK list count as grown, and are dropped by Trim.
	MinEntries = kcp.RINGBUFFER_MIN
)

// Options configure a Factory.
type Options struct {
	// Tune applies the configuration to a new KCP (windows, nodelay,
	// interval, MTU). It is called once per Factory, on the prototype, or
	// on every KCP on the fallback path.
	Tune func(*kcp.KCP)

	// Audited replaces the audited version list when not nil (tests: an
	// empty list forces the fallback path).
	Audited []string

	// NoMem keeps kcp-go's own memory for new KCPs (tests and benchmarks),
	// with the linked flush and scheduling still on.
	NoMem bool
}

// Factory makes and drives the KCPs of one shard. Its methods must be
// called only from the goroutine that owns it, and the KCPs it made only
// from that goroutine too.
type Factory struct {
	tune     func(*kcp.KCP)
	err      error    // why the fast path is off, nil when on
	noMem    bool     // Options.NoMem
	flushBuf []byte   // every KCP's flush buffer
	proto    *kcp.KCP // New's prototype, made on first use
}

// NewFactory returns a Factory for one shard.
func NewFactory(o Options) *Factory {
	f := &Factory{tune: o.Tune, noMem: o.NoMem, err: gateErr}
	if o.Audited != nil {
		f.err = check(o.Audited)
	}
	return f
}

// FastPath reports whether the Factory uses the linked flush and the
// memory and scheduling tricks, and if not, why.
func (f *Factory) FastPath() (bool, error) { return f.err == nil, f.err }

// mem reports whether the memory tricks are on.
func (f *Factory) mem() bool { return f.err == nil && !f.noMem }

// New returns a KCP for conv and out with the Factory's tuning and packet
// size mtu (0: the tuning's).
//
// In race builds the output bytes are overwritten with Poison as soon as
// out returns, so a caller that keeps them past the callback (or a kcp-go
// whose flush reads bytes it wrote in an earlier call) sends garbage the
// tests see.
func (f *Factory) New(conv uint32, out func([]byte, int), mtu int) *kcp.KCP {
	if raceEnabled {
		out = poisonAfter(out)
	}
	k := f.clone(conv, out)
	if k == nil {
		k = kcp.NewKCP(conv, out)
		f.tune(k)
		f.slim(k)
	}
	if mtu > 0 {
		// SetMtu allocates a flush buffer of its own; slim puts the
		// Factory's back, which is large enough for every smaller MTU.
		k.SetMtu(mtu)
		f.slim(k)
	}
	return k
}

// SetMtu sets k's packet size, keeping the Factory's flush buffer.
func (f *Factory) SetMtu(k *kcp.KCP, mtu int) {
	k.SetMtu(mtu)
	f.shareFlushBuf(k)
}

// Flush sends what k has to send now: with flushType kcp.IKCP_FLUSH_FULL
// data, window probes and ACKs, with kcp.IKCP_FLUSH_ACKONLY the ACKs. It
// reports whether k flushed. On the fallback path it is k.Update, which
// flushes (everything) only when KCP's interval tick has come (Check): a
// false answer means k still holds what it owes, and the caller wakes at
// k.Check to try again.
func (f *Factory) Flush(k *kcp.KCP, flushType kcp.FlushType) bool {
	if f.err != nil {
		due := int32(k.Check()-Now()) <= 0
		k.Update()
		return due
	}
	linkedFlush(k, flushType)
	return true
}

// CheckDue reports whether k's Check time has come: whether KCP's
// interval tick (Update) has work now. Check answers on KCP's own clock,
// and when work is due it answers that clock's current reading, so it is
// compared with the same clock read right after it, not with a time the
// caller converted (Ms): that conversion may be a millisecond behind
// KCP's clock (an event that began before KCP's clock ticked; on the
// fallback path, Ms's reference is up to a millisecond late), and the
// answer "now" then read as "in a millisecond" at every wake, for ever.
func (f *Factory) CheckDue(k *kcp.KCP) bool { return int32(k.Check()-Now()) <= 0 }

// clone returns a new KCP for conv and out, made by copying the
// prototype, or nil when the memory tricks are off.
func (f *Factory) clone(conv uint32, out func([]byte, int)) *kcp.KCP {
	m, cl := kcpMem, kcpCloneMem
	if !f.mem() {
		return nil
	}
	if f.proto == nil {
		proto := kcp.NewKCP(0, func([]byte, int) {})
		f.tune(proto)
		f.slim(proto)
		f.proto = proto
	}
	k := new(kcp.KCP)
	*k = *f.proto
	p := unsafe.Pointer(k)
	*(*uint32)(unsafe.Add(p, cl.conv)) = conv
	reflect.NewAt(cl.outputType, unsafe.Add(p, cl.output)).Elem().Set(reflect.ValueOf(out).Convert(cl.outputType))
	reflect.NewAt(cl.logType, unsafe.Add(p, cl.log)).Elem().SetZero()
	for _, off := range m.rings {
		r := reflect.New(cl.ringType).UnsafePointer() // head and tail 0: empty
		reflect.NewAt(m.segsType, unsafe.Add(r, m.ringElems)).Elem().Set(reflect.MakeSlice(m.segsType, RingEntries, RingEntries))
		*(*unsafe.Pointer)(unsafe.Add(p, off)) = r
	}
	h := reflect.New(cl.heapType).UnsafePointer() // no segments yet
	reflect.NewAt(m.marksType, unsafe.Add(h, m.heapMarks)).Elem().Set(reflect.MakeMap(m.marksType))
	*(*unsafe.Pointer)(unsafe.Add(p, m.rcvBuf)) = h
	reflect.NewAt(m.ackType, unsafe.Add(p, m.acklist)).Elem().SetZero()
	*(*[]byte)(unsafe.Add(p, m.buffer)) = f.flushBuf // as slim gave the prototype
	return k
}

// slim puts a new KCP on minimum memory: minimum rings and the Factory's
// flush buffer.
func (f *Factory) slim(k *kcp.KCP) {
	if !f.mem() {
		return
	}
	f.shareFlushBuf(k)
	m, p := kcpMem, unsafe.Pointer(k)
	for _, off := range m.rings {
		m.trimRing(*(*unsafe.Pointer)(unsafe.Add(p, off)))
	}
}

// shareFlushBuf gives k the Factory's flush buffer in place of its own,
// growing it if k needs more.
func (f *Factory) shareFlushBuf(k *kcp.KCP) {
	if !f.mem() {
		return
	}
	buf := (*[]byte)(unsafe.Add(unsafe.Pointer(k), kcpMem.buffer))
	if need := len(*buf); len(f.flushBuf) < need {
		f.flushBuf = make([]byte, need)
	}
	*buf = f.flushBuf
}

// FlushBuf is the Factory's shared flush buffer (tests).
func (f *Factory) FlushBuf() []byte { return f.flushBuf }

// Proto is the Factory's prototype, nil before the first New (tests).
func (f *Factory) Proto() *kcp.KCP { return f.proto }

// Poison is the byte race builds fill output with after the callback.
const Poison = 0xA5

// poisonAfter wraps out so that the bytes it was given are overwritten
// when it returns.
func poisonAfter(out func([]byte, int)) func([]byte, int) {
	return func(b []byte, n int) {
		out(b, n)
		// copy, not a loop of byte stores: one range write for the race
		// detector instead of one event per byte.
		for p := b[:n]; len(p) > 0; {
			p = p[copy(p, poisonBytes):]
		}
	}
}

// poisonBytes is a block of Poison for poisonAfter (race builds only);
// read-only.
var poisonBytes = func() []byte {
	if !raceEnabled {
		return nil
	}
	return bytes.Repeat([]byte{Poison}, 2048)
}()
