package kcp

// uxp fork: kcp-go's tracing (kcp_trace_on.go) and its global SNMP
// counters are left out. The trace calls were removed from the hot path
// rather than stubbed, so that no per-segment interface conversions remain,
// and the global counters were contended atomics shared by every shard.

// mtuLimit is the size of every pooled segment buffer (kcp-go sess.go).
const mtuLimit = 1500

// Flush sends what KCP holds now instead of waiting for the next Update
// interval: kcp-go's UDPSession calls the unexported flush right after
// Send for the same reason. (uxp fork addition.)
func (kcp *KCP) Flush(ft FlushType) uint32 { return kcp.flush(ft) }

// Now is KCP's millisecond clock, the one Check answers in. (uxp fork
// addition.)
func Now() uint32 { return currentMs() }

// UseBuffer makes buf KCP's flush scratch space in place of its own
// 3×(MTU+overhead) buffer, so that sessions flushed by one goroutine can
// share one. KCP keeps nothing in it between calls. It reports false, and
// changes nothing, if buf is too short for the current MTU. (uxp fork
// addition.)
func (kcp *KCP) UseBuffer(buf []byte) bool {
	if len(buf) < int(kcp.mtu+IKCP_OVERHEAD)*3 {
		return false
	}
	kcp.buffer = buf
	return true
}

// SharedBufferSize is the scratch buffer UseBuffer needs for any MTU up to
// mtuLimit. (uxp fork addition.)
const SharedBufferSize = (mtuLimit + IKCP_OVERHEAD) * 3
