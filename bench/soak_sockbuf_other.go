//go:build !linux

package main

import "net"

// forceSockBuf is Linux-only; elsewhere the buffers are set as far as the
// system allows.
func forceSockBuf(pc *net.UDPConn, n int) bool {
	_ = pc.SetReadBuffer(n)
	_ = pc.SetWriteBuffer(n)
	return false
}
