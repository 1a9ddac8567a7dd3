package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"time"

	"github.com/quic-go/quic-go"
	kcp "github.com/xtaci/kcp-go/v5"
)

// kcp-go, configured the way kcptun's "fast3" profile and most game
// servers run it: no-delay, 10 ms interval, fast resend 2, no congestion
// window, 1024-segment windows, stream mode, 1400-byte MTU (kcptun's
// default, and uxp's until its default became the path's: 1472 bytes
// over IPv4).
// kcp-salsa-fec adds Salsa20 and Reed-Solomon 10/3, kcptun's defaults.

// kcpKey is a fixed benchmark key: this is a throughput test, not a secret.
var kcpKey = []byte("uxp-bench-kcp-salsa20-key-32byte")

func kcpOptions(sys string) (kcp.BlockCrypt, int, int) {
	if sys == sysKCPSalsa {
		b, _ := kcp.NewSalsa20BlockCrypt(kcpKey)
		return b, 10, 3
	}
	return nil, 0, 0
}

func tuneKCP(s *kcp.UDPSession) {
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(1024, 1024)
	s.SetMtu(1400)
	//lint:ignore SA1019 kcptun runs kcp-go in stream mode; the comparison uses kcptun's settings.
	s.SetStreamMode(true)
	s.SetWriteDelay(false)
	s.SetACKNoDelay(false)
	_ = s.SetReadBuffer(socketBuffer)
	_ = s.SetWriteBuffer(socketBuffer)
}

type kcpServer struct {
	counters
	ln *kcp.Listener
}

func listenKCP(sys, addr string) (*kcpServer, error) {
	block, ds, ps := kcpOptions(sys)
	ln, err := kcp.ListenWithOptions(addr, block, ds, ps)
	if err != nil {
		return nil, err
	}
	_ = ln.SetReadBuffer(socketBuffer)
	_ = ln.SetWriteBuffer(socketBuffer)
	s := &kcpServer{ln: ln}
	go func() {
		for {
			c, err := ln.AcceptKCP()
			if err != nil {
				return
			}
			tuneKCP(c)
			s.open()
			go func() {
				defer s.closed()
				serveStream(c, &s.sink)
			}()
		}
	}()
	return s, nil
}

func (s *kcpServer) Addr() string { return s.ln.Addr().String() }
func (s *kcpServer) Key() string  { return "-" }
func (s *kcpServer) Close()       { s.ln.Close() }

func dialKCP(sys, addr string) (msgConn, error) {
	block, ds, ps := kcpOptions(sys)
	c, err := kcp.DialWithOptions(addr, block, ds, ps)
	if err != nil {
		return nil, err
	}
	tuneKCP(c)
	return newStreamConn(c), nil
}

// quic-go: TLS 1.3 with a fresh self-signed ECDSA certificate, one
// bidirectional stream per connection, default quic.Config apart from the
// idle timeout.

const quicALPN = "uxp-bench"

var quicConfig = &quic.Config{MaxIdleTimeout: 30 * time.Second, KeepAlivePeriod: 5 * time.Second}

type quicServer struct {
	counters
	ln *quic.Listener
}

func listenQUIC(ctx context.Context, addr string) (*quicServer, error) {
	cert, err := selfSigned()
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{quicALPN}}
	ln, err := quic.ListenAddr(addr, tc, quicConfig)
	if err != nil {
		return nil, err
	}
	s := &quicServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			s.open()
			go func() {
				defer s.closed()
				st, err := c.AcceptStream(ctx)
				if err != nil {
					return
				}
				serveStream(st, &s.sink)
				_ = c.CloseWithError(0, "")
			}()
		}
	}()
	return s, nil
}

func (s *quicServer) Addr() string { return s.ln.Addr().String() }
func (s *quicServer) Key() string  { return "-" }
func (s *quicServer) Close()       { s.ln.Close() }

type quicConn struct {
	*streamConn
	conn *quic.Conn
}

func (q *quicConn) Close() error {
	q.streamConn.Close()
	return q.conn.CloseWithError(0, "")
}

func dialQUIC(ctx context.Context, addr string) (msgConn, error) {
	tc := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{quicALPN}}
	c, err := quic.DialAddr(ctx, addr, tc, quicConfig)
	if err != nil {
		return nil, err
	}
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return &quicConn{newStreamConn(st), c}, nil
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
