package testutil

import (
	"net"
	"testing"
)

// UDPSocket opens a loopback IPv4 UDP socket with 4 MiB buffers (bursts of
// batched sends overflow the default ones), closed at the end of the test.
// The batch I/O tests of package uxp and of internal/sockio use it.
func UDPSocket(t testing.TB) *net.UDPConn {
	t.Helper()
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = u.SetReadBuffer(4 << 20)
	_ = u.SetWriteBuffer(4 << 20)
	t.Cleanup(func() { u.Close() })
	return u
}
