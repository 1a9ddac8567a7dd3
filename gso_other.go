//go:build !linux

package uxp

import (
	"net"
	"net/netip"
)

// gsoSender does not exist off Linux: newGSO returns nil and datagrams are
// sent one by one.
type gsoSender struct{}

func newGSO(*net.UDPConn) *gsoSender { return nil }

func (*gsoSender) send([]byte, int, netip.AddrPort) error { return nil }

func gsoUnsupported(error) bool { return true }
