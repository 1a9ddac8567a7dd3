// Package kcp is the KCP ARQ state machine of github.com/xtaci/kcp-go/v5
// v5.6.72 (kcp.go, ringbuffer.go, bufferpool.go; MIT licence, see
// LICENSE), forked so that the per-segment path does not allocate. It is
// pure: no I/O, no goroutines.
//
// The diff against upstream is kept small so that upstream fixes can be
// carried over (which is also why kcp-go's C-style names stay):
//   - segmentHeap is a typed heap (container/heap boxed every segment);
//   - the buffer pool stores array pointers (a []byte in a sync.Pool boxes
//     its header);
//   - tracing and the global SNMP counters are removed;
//   - Flush and Now are exported (uxp linked to them before).
package kcp
