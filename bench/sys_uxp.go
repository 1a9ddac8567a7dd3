package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/uxp-go/uxp"
	"github.com/uxp-go/uxp/internal/uxpbench"
)

// uxp runs with its defaults (ChaCha20-Poly1305, the fast KCP profile)
// apart from the FEC a client asks for. The server's policy allows FEC up
// to 10 data shards and 8 parity, adaptive or not.

type uxpServer struct {
	srv *uxp.Server
	h   *uxpbench.Server
	pub string
}

func listenUXP(addr string) (*uxpServer, error) {
	kp, err := uxp.GenerateKey()
	if err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	cfg := &uxp.Config{
		PrivateKey: kp.Private,
		FEC:        uxp.FECConfig{DataShards: 10, ParityShards: 3, Adaptive: true, MaxParity: 8},
		KCP:        benchKCP(),
		Admission:  benchAdmission,

		CongestionControl: benchCongestion(),
	}
	h := uxpbench.NewServer()
	srv, err := uxp.NewServer(pc, h, cfg)
	if err != nil {
		pc.Close()
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	return &uxpServer{srv: srv, h: h, pub: kp.Public.String()}, nil
}

func (s *uxpServer) Addr() string                 { return s.srv.Addr().String() }
func (s *uxpServer) Key() string                  { return s.pub }
func (s *uxpServer) Sessions() int64              { return s.h.Sessions() }
func (s *uxpServer) Accepted() int64              { return s.h.Accepted() }
func (s *uxpServer) Sink() (int64, time.Duration) { return s.h.SinkStats() }
func (s *uxpServer) Drops() string                { return fmt.Sprintf("%+v", s.srv.Stats().Drops) }
func (s *uxpServer) Ended() string                { return s.h.Ended() }
func (s *uxpServer) Close()                       { s.srv.Close() }

// benchAdmission turns off the per-source bounds: a load process stands
// in for thousands of clients on other machines, but all its sessions
// come from one loopback address, which the default 4096 sessions per
// source (and, under load, 256 handshakes a second per source) would cap.
// Cookies under load still apply.
var benchAdmission = uxp.AdmissionConfig{MaxSessionsPerSource: -1, SourceHandshakeRate: -1}

// benchCongestion is Config.CongestionControl for every uxp variant, from
// the environment variable UXP_BENCH_CC ("" the library's zero value,
// the model-based controller, which gates; "bbr", "cubic" or "none", no
// congestion control), which the role processes inherit.
func benchCongestion() uxp.CongestionControl {
	return uxp.CongestionControl(os.Getenv("UXP_BENCH_CC"))
}

// uxpClientConfig is the client side of sys.
// benchKCP is uxp's default KCP configuration with the 1024-segment
// windows that the kcp-go peers run with (sys_peers.go) and that
// docs/tuning.md's bulk profile recommends; the default 256 is the game
// profile. Only the bulk scenario fills a window.
func benchKCP() uxp.KCPConfig {
	k := uxp.DefaultConfig().KCP
	k.SendWindow, k.RecvWindow = 1024, 1024
	return k
}

func uxpClientConfig(sys, key string) (*uxp.Config, error) {
	pub, err := uxp.ParsePublicKey(key)
	if err != nil {
		return nil, err
	}
	cfg := &uxp.Config{ServerPublicKey: pub, KCP: benchKCP(), CongestionControl: benchCongestion()}
	switch sys {
	case sysUXPFEC:
		cfg.FEC = uxp.FECConfig{DataShards: 10, ParityShards: 3}
	case sysUXPAdaptive:
		cfg.FEC = uxp.FECConfig{DataShards: 10, ParityShards: 3, Adaptive: true, MaxParity: 8}
	}
	return cfg, nil
}

func dialUXP(ctx context.Context, sys, addr, key string, h uxp.ConnHandler) (*uxp.Client, error) {
	cfg, err := uxpClientConfig(sys, key)
	if err != nil {
		return nil, err
	}
	return uxp.Dial(ctx, addr, h, cfg)
}
