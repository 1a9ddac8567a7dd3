//go:build !linux

package uxp

import (
	"net"
	"net/netip"
)

// groReader does not exist off Linux: newGRO returns nil and the read
// loop reads one datagram per call.
type groReader struct{}

func newGRO(*net.UDPConn) *groReader { return nil }

func (*groReader) read() ([]byte, int, netip.AddrPort, error) {
	return nil, 0, netip.AddrPort{}, net.ErrClosed
}
