//go:build !linux

package sockio

import (
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
)

// Off Linux there is no batched socket I/O: NewReader and NewSender return
// nil, and the caller reads and writes one datagram per call through
// Socket (without GRO or GSO).

/* Implementation constants */
const (
	// DefaultReadBatch is the messages per call a Linux Reader takes by
	// default; here only for a common API.
	DefaultReadBatch = 8
)

// Reader is Linux's recvmmsg reader; off Linux NewReader returns nil.
type Reader struct{}

// NewReader returns nil: there is no recvmmsg off Linux.
func NewReader(*Socket, bool, int, int) *Reader { return nil }

// Read reports net.ErrClosed; there are no Readers off Linux.
func (*Reader) Read() (int, error) { return 0, net.ErrClosed }

// Message returns nothing; there are no Readers off Linux.
func (*Reader) Message(int) ([]byte, int, netip.AddrPort, bool) {
	return nil, 0, netip.AddrPort{}, false
}

// Sender is Linux's sendmmsg sender; off Linux NewSender returns nil.
type Sender struct{}

// NewSender returns nil: there is no sendmmsg off Linux.
func NewSender(*Socket, *atomic.Bool, *slog.Logger, func(uint32)) *Sender { return nil }

// Flush does nothing; there are no Senders off Linux.
func (*Sender) Flush(*Batch) {}

// NoBatchIO reports false: off Linux there is no batched I/O to fall back
// from.
func NoBatchIO(error) bool { return false }
