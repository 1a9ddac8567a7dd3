package sockio

import (
	"errors"
	"syscall"
	"unsafe"
)

// UDP generic segmentation offload (Linux 4.18+): one message carries up
// to 64 equal-sized datagrams to one address (the last may be shorter),
// with a UDP_SEGMENT control message giving the size. The kernel splits
// them, in the NIC where it can; on loopback the stack handles the
// super-packet whole. It saves the per-datagram work of the send path,
// which dominates the CPU cost of bulk sending. The batch Sender
// (batch_send_linux.go) puts GSO runs in its sendmmsg batch.

/* Specification constants (linux/udp.h) */
const (
	solUDP     = 17  // SOL_UDP
	udpSegment = 103 // UDP_SEGMENT
)

// gsoSupported reports whether rc's socket knows UDP_SEGMENT.
func gsoSupported(rc syscall.RawConn) bool {
	ok := false
	_ = rc.Control(func(fd uintptr) {
		_, err := syscall.GetsockoptInt(int(fd), solUDP, udpSegment)
		ok = err == nil
	})
	return ok
}

// putSegmentSize writes a UDP_SEGMENT control message for datagrams of
// size bytes into oob, which must hold CmsgSpace(2) bytes, and returns
// its length.
func putSegmentSize(oob []byte, size int) int {
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = solUDP
	h.Type = udpSegment
	h.SetLen(syscall.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&oob[syscall.CmsgLen(0)])) = uint16(size)
	return syscall.CmsgSpace(2)
}

// putPort stores a port in network byte order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// gsoUnsupported reports whether err means this socket or path cannot do
// GSO at all (rather than a passing send failure).
func gsoUnsupported(err error) bool {
	return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EINVAL) ||
		errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOPROTOOPT)
}
