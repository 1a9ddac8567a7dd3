package uxp

import (
	"io"
	"net"
	"testing"
)

// BenchmarkStreamThroughput copies 4 MiB per operation from one end of a
// connection to the other over loopback: a uxp StreamConn (default Config,
// and the bulk profile with 1024-segment windows), and plain TCP as the
// baseline measured in the same run. Compare MB/s.
func BenchmarkStreamThroughput(b *testing.B) {
	const chunk = 4 << 20
	payload := make([]byte, chunk)
	cases := []struct {
		name string
		pair func(b *testing.B) (w, r net.Conn, stop func())
	}{
		{"TCP", tcpPair},
		{"uxp", func(b *testing.B) (net.Conn, net.Conn, func()) { return uxpPair(b, nil) }},
		{"uxp-window1024", func(b *testing.B) (net.Conn, net.Conn, func()) {
			return uxpPair(b, &Config{KCP: KCPConfig{SendWindow: 1024, RecvWindow: 1024}, SendQueueBytes: 4 << 20})
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			w, r, stop := tc.pair(b)
			defer stop()
			done := make(chan error, 1)
			go func() {
				_, err := io.CopyN(io.Discard, r, int64(b.N)*chunk)
				done <- err
			}()
			b.SetBytes(chunk)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := w.Write(payload); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

func tcpPair(b *testing.B) (net.Conn, net.Conn, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	w, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	r, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	return w, r, func() { w.Close(); r.Close() }
}

func uxpPair(b *testing.B, cfg *Config) (net.Conn, net.Conn, func()) {
	ln, cli, srv := loopbackStreamPair(b, cfg)
	return cli, srv, func() { cli.Close(); srv.Close(); ln.Close() }
}
