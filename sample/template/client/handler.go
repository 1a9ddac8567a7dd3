package main

import (
	"encoding/binary"
	"log/slog"
	"time"

	"github.com/uxp-go/uxp"
)

// echo is one echoed message, copied out of the callback.
type echo struct {
	seq  uint64
	rtt  time.Duration
	text string
}

// clientHandler receives the session's events. Its callbacks run one at a
// time on the client's update worker; they hand data to run through
// channels and never block.
type clientHandler struct {
	log    *slog.Logger
	start  time.Time
	echoes chan echo     // buffered for every message, so sends never block
	closed chan struct{} // closed by OnClosed
}

// OnReady runs once the session is established, before Dial returns.
func (h *clientHandler) OnReady(c *uxp.Conn) {
	h.log.Info("OnReady", "conn", c.ID(), "remote", c.RemoteAddr(), "local", c.LocalAddr(), "cipher", c.Cipher())
}

// OnNewDataComing runs once per echo. data is only valid during the call,
// so everything kept is copied out of it.
func (h *clientHandler) OnNewDataComing(_ *uxp.Conn, data []byte) {
	if len(data) < headerSize {
		h.log.Warn("short message ignored", "bytes", len(data))
		return
	}
	e := echo{
		seq:  binary.LittleEndian.Uint64(data),
		rtt:  time.Since(h.start) - time.Duration(binary.LittleEndian.Uint64(data[8:])),
		text: string(data[headerSize:]), // string() copies
	}
	select {
	case h.echoes <- e:
	default:
		// More echoes than messages sent: the server is not an echo server.
		h.log.Warn("unexpected message ignored", "seq", e.seq)
	}
}

// OnClosed runs exactly once when the session ends; err unwraps to
// net.ErrClosed.
func (h *clientHandler) OnClosed(c *uxp.Conn, err error) {
	h.log.Info("OnClosed", "conn", c.ID(), "err", err)
	close(h.closed)
}
