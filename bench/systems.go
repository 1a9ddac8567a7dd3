package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/uxp-go/uxp/internal/uxpbench"
)

// Systems under test. The uxp variants share one server (whose FEC policy
// allows every client request) and differ in what the client asks for.
const (
	sysUXP         = "uxp"          // ChaCha20-Poly1305, FEC off
	sysUXPFEC      = "uxp-fec"      // ChaCha20-Poly1305, FEC 10/3 fixed
	sysUXPAdaptive = "uxp-adaptive" // ChaCha20-Poly1305, FEC 10/3 adaptive
	sysKCP         = "kcp"          // kcp-go UDPSession, no crypto, no FEC
	sysKCPSalsa    = "kcp-salsa-fec"
	sysQUIC        = "quic"
	sysTCP         = "tcp"
	sysUDP         = "udp" // raw datagrams: no reliability, no crypto
)

func isUXP(sys string) bool { return sys == sysUXP || sys == sysUXPFEC || sys == sysUXPAdaptive }

// benchServer is one system's server: it echoes KindEcho messages and
// counts KindSink bytes.
type benchServer interface {
	Addr() string
	Key() string // what a client needs besides the address ("-" if nothing)
	Sessions() int64
	Accepted() int64
	Sink() (int64, time.Duration)
	Close()
}

// msgConn is a client's message channel on a system other than uxp. One
// goroutine may write while another reads.
type msgConn interface {
	WriteMsg(b []byte) error
	ReadMsg(b []byte) (int, error) // one whole message
	Close() error
}

func listenSystem(ctx context.Context, sys, addr string) (benchServer, error) {
	switch {
	case isUXP(sys):
		return listenUXP(addr)
	case sys == sysKCP || sys == sysKCPSalsa:
		return listenKCP(sys, addr)
	case sys == sysQUIC:
		return listenQUIC(ctx, addr)
	case sys == sysTCP:
		return listenTCP(addr)
	case sys == sysUDP:
		return listenUDP(addr)
	}
	return nil, fmt.Errorf("unknown system %q", sys)
}

func dialSystem(ctx context.Context, sys, addr string) (msgConn, error) {
	switch sys {
	case sysKCP, sysKCPSalsa:
		return dialKCP(sys, addr)
	case sysQUIC:
		return dialQUIC(ctx, addr)
	case sysTCP:
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		tc := c.(*net.TCPConn)
		_ = tc.SetNoDelay(true)
		return newStreamConn(tc), nil
	case sysUDP:
		return dialUDP(addr)
	}
	return nil, fmt.Errorf("system %q has no generic client", sys)
}

// socketBuffer is what every system's UDP sockets get, as the suite's
// common rule for loopback bursts.
const socketBuffer = 4 << 20

// maxMsg bounds benchmark messages on stream systems.
const maxMsg = 1 << 20

// streamConn frames messages on a byte stream as u32 length + bytes.
type streamConn struct {
	c    io.ReadWriteCloser
	r    *bufio.Reader
	wbuf []byte
}

func newStreamConn(c io.ReadWriteCloser) *streamConn {
	return &streamConn{c: c, r: bufio.NewReaderSize(c, 64<<10)}
}

func (s *streamConn) WriteMsg(b []byte) error {
	s.wbuf = binary.LittleEndian.AppendUint32(s.wbuf[:0], uint32(len(b)))
	s.wbuf = append(s.wbuf, b...)
	_, err := s.c.Write(s.wbuf)
	return err
}

func (s *streamConn) ReadMsg(b []byte) (int, error) {
	var h [4]byte
	if _, err := io.ReadFull(s.r, h[:]); err != nil {
		return 0, err
	}
	n := int(binary.LittleEndian.Uint32(h[:]))
	if n > len(b) {
		return 0, fmt.Errorf("message of %d bytes exceeds %d", n, len(b))
	}
	_, err := io.ReadFull(s.r, b[:n])
	return n, err
}

func (s *streamConn) Close() error { return s.c.Close() }

// serveStream runs the echo/sink protocol on one stream until it fails.
func serveStream(c io.ReadWriteCloser, sink *uxpbench.Sink) {
	sc := newStreamConn(c)
	defer sc.Close()
	buf := make([]byte, maxMsg)
	for {
		n, err := sc.ReadMsg(buf)
		if err != nil {
			return
		}
		if n >= uxpbench.HeaderSize && buf[0] == uxpbench.KindEcho {
			if sc.WriteMsg(buf[:n]) != nil {
				return
			}
			continue
		}
		sink.Add(n)
	}
}

// counters is the session bookkeeping the non-uxp servers share.
type counters struct {
	mu       sync.Mutex
	live     int64
	accepted int64
	sink     uxpbench.Sink
}

func (c *counters) open() {
	c.mu.Lock()
	c.live++
	c.accepted++
	c.mu.Unlock()
}

func (c *counters) closed() {
	c.mu.Lock()
	c.live--
	c.mu.Unlock()
}

func (c *counters) Sessions() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

func (c *counters) Accepted() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accepted
}

func (c *counters) Sink() (int64, time.Duration) { return c.sink.Snapshot() }

// TCP.

type tcpServer struct {
	counters
	ln net.Listener
}

func listenTCP(addr string) (*tcpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &tcpServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*net.TCPConn).SetNoDelay(true)
			s.open()
			go func() {
				defer s.closed()
				serveStream(c, &s.sink)
			}()
		}
	}()
	return s, nil
}

func (s *tcpServer) Addr() string { return s.ln.Addr().String() }
func (s *tcpServer) Key() string  { return "-" }
func (s *tcpServer) Close()       { s.ln.Close() }

// Raw UDP: each message is one datagram; nothing is retransmitted.

type udpServer struct {
	counters
	pc *net.UDPConn
}

func listenUDP(addr string) (*udpServer, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	_ = pc.SetReadBuffer(socketBuffer)
	_ = pc.SetWriteBuffer(socketBuffer)
	s := &udpServer{pc: pc}
	s.open()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if n >= uxpbench.HeaderSize && buf[0] == uxpbench.KindEcho {
				_, _ = pc.WriteToUDPAddrPort(buf[:n], from)
				continue
			}
			s.sink.Add(n)
		}
	}()
	return s, nil
}

func (s *udpServer) Addr() string { return s.pc.LocalAddr().String() }
func (s *udpServer) Key() string  { return "-" }
func (s *udpServer) Close()       { s.pc.Close() }

type udpConn struct{ c *net.UDPConn }

func dialUDP(addr string) (*udpConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(socketBuffer)
	_ = c.SetWriteBuffer(socketBuffer)
	return &udpConn{c}, nil
}

func (u *udpConn) WriteMsg(b []byte) error {
	_, err := u.c.Write(b)
	return err
}

func (u *udpConn) ReadMsg(b []byte) (int, error) { return u.c.Read(b) }
func (u *udpConn) Close() error                  { return u.c.Close() }
