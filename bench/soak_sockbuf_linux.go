package main

import (
	"net"
	"syscall"
)

// forceSockBuf sets pc's receive and send buffers to n bytes past the
// net.core.rmem_max/wmem_max cap (SO_RCVBUFFORCE, SO_SNDBUFFORCE: needs
// CAP_NET_ADMIN, and changes nothing outside this socket). It reports
// whether the receive buffer was set.
func forceSockBuf(pc *net.UDPConn, n int) bool {
	rc, err := pc.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	_ = rc.Control(func(fd uintptr) {
		ok = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n) == nil
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, n)
	})
	return ok
}
