package uxp

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string // "" means valid
	}{
		{"zero value", Config{}, ""},
		{"salsa", Config{Cipher: Salsa20Poly1305}, ""},
		{"unknown cipher", Config{Cipher: 9}, "Cipher"},
		{"interval too small", Config{KCP: KCPConfig{Interval: time.Millisecond}}, "KCP.Interval"},
		{"interval too large", Config{KCP: KCPConfig{Interval: time.Minute}}, "KCP.Interval"},
		{"negative send window", Config{KCP: KCPConfig{SendWindow: -1}}, "KCP.SendWindow"},
		{"negative recv window", Config{KCP: KCPConfig{RecvWindow: -1}}, "KCP.RecvWindow"},
		{"mtu too small", Config{KCP: KCPConfig{MTU: 100}}, "KCP.MTU"},
		{"mtu too large", Config{KCP: KCPConfig{MTU: 9000}}, "KCP.MTU"},
		{"negative handshake timeout", Config{HandshakeTimeout: -time.Second}, "HandshakeTimeout"},
		{"negative workers", Config{Workers: -1}, "Workers"},
		{"negative max message", Config{MaxMessageSize: -1}, "MaxMessageSize"},
		{"message too large for window", Config{MaxMessageSize: 1 << 20}, "MaxMessageSize"},
		{"message too large for small window", Config{KCP: KCPConfig{RecvWindow: 8}, MaxMessageSize: 20000}, "MaxMessageSize"},
		{"negative send queue", Config{SendQueueBytes: -1}, "SendQueueBytes"},
		{"send queue below max message", Config{SendQueueBytes: 1000, MaxMessageSize: 2000}, "SendQueueBytes"},
		{"idle below heartbeat", Config{HeartbeatInterval: 5 * time.Second, IdleTimeout: 2 * time.Second}, "IdleTimeout"},
		{"heartbeats off", Config{HeartbeatInterval: -1, IdleTimeout: time.Second}, ""},
		{"idle off", Config{IdleTimeout: -1}, ""},
		{"no per-source session limit", Config{Admission: AdmissionConfig{MaxSessionsPerSource: -1}}, ""},
		{"no per-source handshake rate", Config{Admission: AdmissionConfig{SourceHandshakeRate: -1}}, ""},
		{"negative load threshold", Config{Admission: AdmissionConfig{LoadThreshold: -1}}, "Admission.LoadThreshold"},
		{"load threshold above the queue", Config{Admission: AdmissionConfig{LoadThreshold: 1025}}, "Admission.LoadThreshold"},
		{"negative handshake burst", Config{Admission: AdmissionConfig{SourceHandshakeBurst: -1}}, "Admission.SourceHandshakeBurst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.cfg
			err := tt.cfg.Validate()
			require.Equal(t, before, tt.cfg, "Validate must not modify the Config")
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "got %v", err)
			require.Equal(t, tt.field, ce.Field)
			require.Contains(t, err.Error(), tt.field)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	var nilCfg *Config
	require.NoError(t, nilCfg.Validate())
	d := DefaultConfig()
	require.NoError(t, d.Validate())
	set, err := d.resolve()
	require.NoError(t, err)
	zero, err := (&Config{}).resolve()
	require.NoError(t, err)
	require.Equal(t, set, zero, "the zero Config means the defaults")
	require.Equal(t, 3*time.Second, set.heartbeat)
	require.Equal(t, 10*time.Second, set.idleTimeout)
	require.Zero(t, set.cipher, "no cipher pinned: negotiated (negotiate.go)")
	require.True(t, set.kcpNoDelay)
	require.Equal(t, 2, set.kcpFastResend)
	require.False(t, set.kcpCongestion)
	require.Equal(t, 10*time.Millisecond, set.kcpInterval)
	c := d.Clone()
	t.Run("packet size", func(t *testing.T) {
		// No KCP.MTU: the most a 1500-byte Ethernet MTU carries in the
		// peer's family, and the receiver accepts the larger.
		require.Zero(t, d.KCP.MTU, "DefaultConfig leaves it to the path")
		require.Equal(t, 1472, set.mtu, "the receive limit")
		for _, tt := range []struct {
			peer string
			auto int
		}{
			{"192.0.2.1:9", 1472},
			{"[::ffff:192.0.2.1]:9", 1472},
			{"[2001:db8::1]:9", 1452},
			{"[::1]:9", 1452},
		} {
			require.Equal(t, tt.auto, set.mtuFor(netip.MustParseAddrPort(tt.peer)), tt.peer)
		}
		require.Equal(t, 1452, set.mtuFor(netip.AddrPort{}), "neither family: the smaller")
		fixed, err := (&Config{KCP: KCPConfig{MTU: 1300}}).resolve()
		require.NoError(t, err)
		for _, peer := range []string{"192.0.2.1:9", "[2001:db8::1]:9"} {
			require.Equal(t, 1300, fixed.mtuFor(netip.MustParseAddrPort(peer)), "configured: for every peer")
		}
		// MaxMessageSize must fit at the smaller default size: 255
		// segments of IPv6's, not IPv4's.
		big := &Config{KCP: KCPConfig{RecvWindow: 1024}, SendQueueBytes: 4 << 20}
		big.MaxMessageSize = maxFragments*set.mssAt(defaultMTUIPv6) - laneHeaderMax
		require.NoError(t, big.Validate())
		big.MaxMessageSize++
		require.Error(t, big.Validate())
	})
	c.Workers = 99
	require.NotEqual(t, c.Workers, d.Workers, "Clone is a copy")

	// Clone copies slices too: changing the clone's never reaches the
	// original.
	kp := testKeys(t)
	orig := &Config{Lanes: []LaneConfig{{Priority: 1}}}
	orig.Identity.AllowedClientKeys = []PublicKey{kp.Public}
	cl := orig.Clone()
	cl.Lanes[0].Priority = 7
	cl.Identity.AllowedClientKeys[0] = PublicKey{}
	require.Equal(t, 1, orig.Lanes[0].Priority)
	require.Equal(t, kp.Public, orig.Identity.AllowedClientKeys[0])
}

func TestNewServerClientNeedKeys(t *testing.T) {
	pc := newLoopbackPC(t)
	_, err := NewServer(pc, nil, nil)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "PrivateKey", ce.Field)
	_, err = NewClient(pc, pc.LocalAddr(), nil, nil)
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "ServerPublicKey", ce.Field)
	_, err = NewServer(nil, nil, &Config{PrivateKey: testKeys(t).Private})
	require.Error(t, err)
}
