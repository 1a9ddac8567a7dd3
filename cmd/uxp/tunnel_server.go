package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/xtaci/smux"

	"github.com/uxp-go/uxp"
)

// tunnelServerCommand implements `uxp tunnel server`.
func tunnelServerCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("uxp tunnel server", "uxp tunnel server -listen :4000 -target 127.0.0.1:22 -key FILE", stderr)
	listen := fs.String("listen", ":4000", "UDP `address` to accept uxp sessions on")
	target := fs.String("target", "", "TCP `address` every forwarded connection is dialled to (required)")
	keyFile := fs.String("key", "", "`FILE` holding the server's base64 private key (uxp keygen -private-out); default $"+envTunnelKey)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *target == "" {
		fmt.Fprintln(stderr, "-target is required")
		fs.Usage()
		return &usageError{errors.New("-target is required")}
	}
	key, err := loadPrivateKey(*keyFile, os.Getenv)
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", *listen)
	if err != nil {
		return err
	}
	cfg := tunnelConfig()
	cfg.PrivateKey = key
	log := newTunnelLogger(stderr)
	s, err := newTunnelServer(pc, *target, cfg, log)
	if err != nil {
		pc.Close()
		return err
	}
	pub, _ := key.PublicKey()
	log.Info("tunnel server listening", "addr", s.ln.Addr().String(), "target", *target, "public_key", pub.String())
	return s.serve(ctx)
}

// tunnelServer accepts uxp sessions, runs an smux server on each, and
// forwards every smux stream to the target over TCP.
type tunnelServer struct {
	ln     *uxp.Listener
	target string
	log    *slog.Logger
	conns  connSet // smux sessions and forwarded TCP connections
	wg     sync.WaitGroup
	ids    atomic.Uint64 // numbers forwarded connections in log lines
}

func newTunnelServer(pc net.PacketConn, target string, cfg *uxp.Config, log *slog.Logger) (*tunnelServer, error) {
	ln, err := uxp.Listen(pc, cfg)
	if err != nil {
		return nil, err
	}
	return &tunnelServer{ln: ln, target: target, log: log}, nil
}

// serve runs until ctx is cancelled (or the socket fails), then closes
// every session and connection and waits for its goroutines.
func (s *tunnelServer) serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	var err error
	for {
		var c net.Conn
		c, err = s.ln.Accept()
		if err != nil {
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.session(c)
		}()
	}
	s.ln.Close()
	s.conns.closeAll()
	s.wg.Wait()
	if ctx.Err() != nil {
		s.log.Info("tunnel server stopped")
		return nil
	}
	return err
}

// session serves one uxp session: each smux stream is one forwarded TCP
// connection.
func (s *tunnelServer) session(c net.Conn) {
	peer := c.RemoteAddr().String()
	sess, err := smux.Server(c, smuxConfig())
	if err != nil {
		c.Close()
		return
	}
	if !s.conns.add(sess) {
		return
	}
	defer s.conns.remove(sess)
	defer sess.Close()
	s.log.Info("tunnel: uxp session up", "peer", peer)
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			s.log.Info("tunnel: uxp session down", "peer", peer, "err", err)
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.stream(st, peer)
		}()
	}
}

func (s *tunnelServer) stream(st *smux.Stream, peer string) {
	id := s.ids.Add(1)
	tcp, err := net.DialTimeout("tcp", s.target, tunnelDialTimeout)
	if err != nil {
		s.log.Warn("tunnel: dialling target failed", "conn", id, "peer", peer, "target", s.target, "err", err)
		st.Close()
		return
	}
	if !s.conns.add(tcp) {
		st.Close()
		return
	}
	defer s.conns.remove(tcp)
	s.log.Info("tunnel: open", "conn", id, "peer", peer, "target", s.target)
	// sent = target -> tunnel client, received = tunnel client -> target.
	forward(s.log, id, tcp, st)
}
