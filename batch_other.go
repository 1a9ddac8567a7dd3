//go:build !linux

package uxp

import (
	"net"
	"net/netip"
)

// Off Linux there is no batched socket I/O: newBatchReader and
// newBatchSender return nil, the read loop reads one datagram per call
// (without GRO), and flushSends sends one datagram per call (without GSO).

type batchReader struct{}

func newBatchReader(*net.UDPConn, bool) *batchReader { return nil }

func (*batchReader) read() (int, error) { return 0, net.ErrClosed }

func (*batchReader) message(int) ([]byte, int, netip.AddrPort, bool) {
	return nil, 0, netip.AddrPort{}, false
}

type batchSender struct{}

func newBatchSender(*net.UDPConn) *batchSender { return nil }

func (*batchSender) flush(*endpoint, *sendBatch) {}

func noBatchIO(error) bool { return false }
