package sockio

import (
	"syscall"
	"unsafe"
)

// UDP generic receive offload (Linux 5.0+): with UDP_GRO set, the kernel
// may hand one receive several consecutive datagrams of one flow, glued
// together, with a UDP_GRO control message giving their size. A bulk
// sender using GSO then costs the receiver one message per 64 KiB instead
// of one per datagram. Datagrams the kernel did not merge arrive as usual,
// one per message. The batch Reader (batch_linux.go) turns it on.

/* Specification constants (linux/udp.h) */
const udpGRO = 104 // UDP_GRO

// enableGRO turns on UDP_GRO for rc's socket and reports whether the
// kernel accepted it.
func enableGRO(rc syscall.RawConn) bool {
	ok := false
	_ = rc.Control(func(fd uintptr) {
		ok = syscall.SetsockoptInt(int(fd), solUDP, udpGRO, 1) == nil
	})
	return ok
}

// groSegment returns the datagram size from the UDP_GRO control message
// in oob, or n (one datagram) when there is none. Malformed control data
// is ignored.
func groSegment(oob []byte, n int) int {
	seg := n
	for len(oob) >= syscall.CmsgLen(0) {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < syscall.CmsgLen(0) || l > len(oob) {
			break
		}
		if h.Level == solUDP && h.Type == udpGRO && l >= syscall.CmsgLen(2) {
			if s := int(*(*uint16)(unsafe.Pointer(&oob[syscall.CmsgLen(0)]))); s > 0 {
				seg = s
			}
		}
		sp := syscall.CmsgSpace(l - syscall.CmsgLen(0))
		if sp > len(oob) {
			break
		}
		oob = oob[sp:]
	}
	return seg
}
