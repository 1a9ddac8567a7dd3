package uxp

import (
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"time"

	ucrypto "github.com/uxp-go/uxp/crypto"
	"github.com/uxp-go/uxp/fec"
	"github.com/uxp-go/uxp/internal/wire"
)

// Cipher selects the AEAD that seals data packets.
type Cipher = ucrypto.Suite

// The ciphers. The two sides negotiate one in the handshake (see
// Config.Cipher and docs/protocol.md section 5.1.3); the offers and the
// choice are authenticated by the Noise transcript, so an attacker cannot
// downgrade it.
const (
	// ChaCha20Poly1305 is the RFC 8439 AEAD with a 96-bit nonce built from
	// the packet counter: the default when either side lacks AES
	// instructions.
	ChaCha20Poly1305 = ucrypto.ChaCha20Poly1305
	// Salsa20Poly1305 seals with Salsa20 and a one-time Poly1305 key that
	// also authenticates the packet header. See docs/protocol.md. It is
	// used only when a side asks for it explicitly.
	Salsa20Poly1305 = ucrypto.Salsa20Poly1305
	// AES256GCM is AES-256 in Galois/Counter Mode: the default when both
	// sides have AES instructions (crypto.HasAESHardware), as TLS 1.3
	// stacks choose it.
	AES256GCM = ucrypto.AES256GCM
)

// Implementation defaults. Each is documented on its Config field.
const (
	defaultHeartbeatInterval = 3 * time.Second
	defaultIdleTimeout       = 10 * time.Second
	defaultHandshakeTimeout  = 5 * time.Second
	defaultMaxMessageSize    = 64 << 10
	defaultSendQueueBytes    = 1 << 20
	defaultSocketBuffer      = 4 << 20
	defaultKCPInterval       = 10 * time.Millisecond
	defaultFastResend        = 2
	defaultWindow            = 256
	// The default packet sizes (Config.KCP.MTU zero): the most UDP
	// payload a 1500-byte Ethernet MTU carries, 1500 less the IP header
	// (20 bytes for IPv4, 40 for IPv6) and the UDP header (8 bytes).
	defaultMTUIPv4       = 1500 - 20 - 8
	defaultMTUIPv6       = 1500 - 40 - 8
	defaultFECParity     = 3
	defaultFECGroupDelay = 20 * time.Millisecond

	minMTU = 576
	// maxMTU is bounded by kcp-go's segment buffer pool (1500-byte buffers).
	maxMTU = 1500
	// maxFragments is KCP's per-message fragment limit (an 8-bit field).
	maxFragments = 255
	// maxWindow bounds KCP.SendWindow and KCP.RecvWindow: the wire
	// carries the low 16 bits of sn and una, and the receiver expands
	// them to the value nearest its own state (docs/protocol.md section
	// 3.5), which is exact while every sequence distance stays below 2^15.
	// KCP keeps its segments in flight within its send window of its
	// snd_una, so a PUSH's sn lies at most one send window from the
	// receiver's rcv_nxt, and an ACK's sn or a una at most one from the
	// sender's snd_una: 2^14 leaves a factor of two. A receive window
	// beyond any conforming sender's send window would buy nothing.
	maxWindow = 1 << 14
)

// Config configures a Server or a Client. A nil *Config means
// DefaultConfig(). The zero value of every field means its default, so a
// Config literal only needs the fields it changes. uxp never modifies a
// Config passed to it; it works on a copy taken at NewServer or NewClient.
type Config struct {
	// PrivateKey is the server's static X25519 private key. Required by
	// NewServer; ignored by clients.
	PrivateKey PrivateKey

	// ServerPublicKey is the server's static public key, pinned by the
	// client. Required by NewClient and Dial; ignored by servers. A server
	// that does not hold the matching private key cannot complete the
	// handshake.
	ServerPublicKey PublicKey

	// Cipher is the AEAD for data packets. Zero means negotiate: each side
	// offers every cipher and says whether it has AES instructions;
	// AES256GCM is chosen when both have them, ChaCha20Poly1305
	// otherwise, as TLS 1.3 stacks do. A non-zero value pins the cipher:
	// a client offers only it, and a server accepts only it. When the
	// other side pinned another one, the server refuses and the client's
	// Start fails with an *IncompatibleError whose Field is "Cipher". A
	// peer from before negotiation uses the client's cipher
	// (ChaCha20Poly1305 for a client here that pins none).
	Cipher Cipher

	// KCP tunes the reliability layer. The zero value is the fast game
	// profile: no-delay RTO, 10 ms interval, fast resend after 2 duplicate
	// ACKs, no congestion window.
	KCP KCPConfig

	// FEC turns on Reed-Solomon forward error correction. The zero value
	// leaves it off. On a server it is the policy: what clients may ask
	// for. On a client it is the request; a request the server does not
	// allow fails Start with ErrFECRefused.
	FEC FECConfig

	// HeartbeatInterval is how often a client sends an authenticated
	// heartbeat; the server answers each one, which gives an RTT sample.
	// Zero means 3 s. Negative disables heartbeats (then an idle session is
	// closed by IdleTimeout unless that is disabled too).
	HeartbeatInterval time.Duration

	// IdleTimeout closes a session when nothing authenticated arrived from
	// the peer for this long. Zero means 10 s. Negative means sessions are
	// never closed for being idle. It must exceed HeartbeatInterval.
	IdleTimeout time.Duration

	// HandshakeTimeout bounds Client.Start (the client retransmits its
	// initiation until then) and how long a server keeps a half-open
	// session waiting for the client's first data packet. Zero means 5 s.
	// Negative is invalid.
	HandshakeTimeout time.Duration

	// Workers is the number of update workers (shards) that drive the
	// sessions of a Server. Zero means runtime.GOMAXPROCS(0). Negative is
	// invalid. A Client always uses one.
	Workers int

	// MaxMessageSize is the largest message Conn.Write accepts. Zero means
	// 64 KiB. Negative is invalid. It must fit in 255 KCP fragments and in
	// the receive window; Validate reports the bound.
	MaxMessageSize int

	// SendQueueBytes bounds the bytes a session holds for sending (queued
	// plus unacknowledged). Conn.Write returns ErrWouldBlock beyond it.
	// Zero means 1 MiB. Negative is invalid. It must be at least
	// MaxMessageSize.
	SendQueueBytes int

	// SocketBufferBytes sets SO_RCVBUF and SO_SNDBUF on sockets that are
	// *net.UDPConn (the kernel may cap it). Zero means 4 MiB. Negative
	// leaves the socket's buffers alone.
	SocketBufferBytes int

	// Lanes declares the session's independent reliable, ordered lanes
	// (lanes.go). Lane i is Lanes[i]; lane 0 is the one Write uses. A loss
	// on one lane never holds back delivery on another. Nil or empty means
	// one lane with the zero LaneConfig. At most 32 lanes. Both sides must
	// declare the same number of lanes: the handshake compares them and a
	// difference fails the client's Start with an *IncompatibleError.
	// Priorities and deadlines are the sender's own and need not match.
	Lanes []LaneConfig

	// Logger receives the SDK's log records. Nil means no logging.
	Logger *slog.Logger

	// MaxSessions bounds the established sessions a server holds. When
	// they fill it, a new client gets an authenticated refusal and its
	// Start fails with ErrServerFull. Half-open sessions (answered, not yet
	// confirmed) do not count; once they and the established ones together
	// reach MaxSessions, the server requires cookies and applies its
	// per-source rate limit to new initiations (Admission also bounds the
	// sessions of each source). A session confirmed when
	// the server is already full is closed unannounced (the client sees
	// ErrPeerClosed). Zero means no limit. Negative is invalid. Ignored by
	// clients.
	MaxSessions int

	// Admission bounds what one source address may take of a server:
	// sessions per source, and the handshake work it may cause under
	// load. The zero value is the defaults (AdmissionConfig). Ignored by
	// clients.
	Admission AdmissionConfig

	// Identity configures client keys (Noise IK), the server's policy
	// about them, and an optional pre-shared key. The zero value means
	// anonymous clients, all accepted, and no pre-shared key.
	Identity IdentityConfig
	// Tracer, when set, receives a per-session event trace as debug-level
	// records: handshake steps, establishment, address changes, rekeys and
	// close reasons (trace.go lists the messages). Nil, the zero value,
	// disables tracing, which then costs a nil check per event and no
	// allocation. It may be the same logger as Logger.
	Tracer *slog.Logger

	// ConnectData is application data a client sends, encrypted and
	// authenticated, inside its handshake: a connect token, an auth
	// ticket, a player name, a build version. The server's
	// ConnectHandler reads it before any session exists, and
	// Conn.ConnectData returns it on both sides. Nil or empty means none
	// (a server that needs some can reject the client). At most
	// MaxConnectDataSize (1000) bytes; longer is invalid. A client with
	// connect data sends a longer initiation (at least 400 bytes) that
	// servers from before this field do not understand. Ignored by
	// servers.
	ConnectData []byte

	// RekeyAfterTime is how long a session uses one generation of
	// transport keys before it replaces them in band (fresh X25519
	// ephemerals; no pause in traffic). Zero means 2 minutes. Negative
	// disables time-based rekeying. Otherwise it must be at least 1 s.
	// Each key generation's actual time is jittered by up to ±20 % (from
	// the session ID and epoch), and a worker that is behind, or past its
	// rekey budget for the second, postpones a due rekey, at most until
	// the generation is twice this old (docs/architecture.md, Overload).
	RekeyAfterTime time.Duration

	// RekeyAfterPackets rekeys a session once this side has sent this many
	// packets under one key generation. Zero means 2^32. Negative disables
	// count-based rekeying. Otherwise it must be at least 64.
	RekeyAfterPackets int64

	// CloseLinger is how long a closing session (Conn.Close, a stream's
	// Close, Server.Shutdown) keeps delivering what was written while the
	// peer acknowledges nothing new. As long as the peer keeps
	// acknowledging, the session keeps delivering, like a TCP socket
	// closed with data queued, up to a hard cap of 30 × CloseLinger after
	// Close. When everything was acknowledged the peer gets an orderly
	// close (its stream reads io.EOF); when the linger runs out first it
	// gets a *CloseError with CloseAbandoned, and so does this side's
	// Conn.Err. Zero means 2 s (so a 60 s cap). Negative means abort at
	// once, like SO_LINGER with a zero timeout: unless everything written
	// was already acknowledged, Close abandons it.
	//
	// (Zero means the default, as for every Config field, rather than
	// SO_LINGER's "abort": a Config literal that does not mention
	// CloseLinger must not lose data on Close.)
	CloseLinger time.Duration

	// CongestionControl selects the session's congestion controller:
	// CongestionModel, the model-based (BBR-style) one, CongestionCubic,
	// or CongestionNone (no control, for dedicated links and LANs). Zero
	// ("") means CongestionModel. A controller limits what the session
	// sends: its window and pacing gate every lane, datagrams and FEC
	// parity, and ACKs are thinned (docs/architecture.md, "Congestion
	// control and pacing"); a small periodic message far below the budget
	// is never delayed (the pacer lets at least 2 packets out at once).
	// CongestionNone limits nothing and acknowledges every segment, the
	// behaviour of uxp before congestion control; the path is still
	// measured (ConnStats.Congestion, BandwidthHandler). Any other value
	// is invalid. Each side controls what it sends; the two need not
	// agree. (KCP.CongestionControl is KCP's own window, separate from
	// this.)
	CongestionControl CongestionControl

	// MinBandwidth is a floor: the controller's bandwidth estimate and
	// pacing rate never go below it, for a game that must keep its tick
	// rate whatever the path seems to allow. Zero means no floor. Negative
	// is invalid.
	MinBandwidth Bandwidth

	// MaxBandwidth caps each session's bandwidth estimate and pacing rate.
	// Zero means no cap. Negative, or below a non-zero MinBandwidth, is
	// invalid.
	MaxBandwidth Bandwidth

	// InitialRate is the pacing rate before the controller has an RTT
	// sample. Zero means the controller's default (its initial window per
	// millisecond: effectively no pacing of the first window). Negative is
	// invalid.
	InitialRate Bandwidth

	// hooks holds this package's test-only knobs (hooks.go); nil
	// outside its tests.
	hooks *testHooks
}

// aesOverride is the aes test hook's value (hooks.go).
type aesOverride uint8

const (
	aesDetect aesOverride = iota // ask the CPU (crypto.HasAESHardware)
	aesPresent
	aesAbsent
)

// KCPConfig tunes the KCP reliability layer. The zero value is the fast
// game profile.
type KCPConfig struct {
	// Interval is KCP's internal update interval. Zero means 10 ms. It must
	// be between 10 ms and 5 s.
	Interval time.Duration

	// DisableNoDelay turns off KCP's no-delay mode (which uses a 30 ms
	// minimum RTO and slower RTO back-off). The zero value keeps it on.
	DisableNoDelay bool

	// FastResend retransmits a segment after this many duplicate ACKs
	// skipped it. Zero means 2. Negative disables fast retransmit.
	FastResend int

	// CongestionControl turns on KCP's congestion window. The zero value
	// keeps it off, which is what latency-critical traffic wants; bulk
	// transfers over shared links should turn it on.
	CongestionControl bool

	// SendWindow and RecvWindow are the KCP window sizes in segments. Zero
	// means 256. Negative is invalid, and so is more than 16384 (the wire
	// carries 16-bit sequence numbers; docs/protocol.md section 3.5).
	SendWindow int
	RecvWindow int

	// MTU is the largest UDP payload uxp sends, headers, tag and KCP header
	// included. Zero means the most a 1500-byte Ethernet MTU carries,
	// chosen per session from the family of the peer's address: 1472
	// bytes to an IPv4 peer (an IPv4-mapped address on a dual-stack
	// socket counts as IPv4), 1452 to an IPv6 one (and to an address that
	// is neither, from a PacketConn of another kind); such a side drops
	// received datagrams longer than 1472 bytes. Otherwise it must be
	// between 576 and 1500, and it is the limit for every peer and for
	// what this side receives. A session uses at most the smaller of its
	// two sides' MTU (Conn.MTU), and path MTU discovery starts it at 1200
	// bytes and searches up to that (Conn.PathMTU); uxp's own UDP sockets,
	// and a *net.UDPConn given to it, never let the kernel fragment (a
	// probe larger than the path is lost, docs/protocol.md section 5.7).
	MTU int
}

// FECConfig configures forward error correction. Shards are grouped: every
// DataShards packets are followed by ParityShards parity packets, and any
// ParityShards losses in a group are repaired on arrival, without waiting
// for a retransmission. The usual choice is 10/3.
type FECConfig struct {
	// DataShards is the number of data packets per group. Zero disables
	// FEC. It must be at most 64.
	DataShards int

	// ParityShards is the number of parity packets per group (the starting
	// value in adaptive mode with CongestionNone; under a congestion
	// controller adaptive mode starts at 0 and adds parity only for random
	// loss the peer reports). Zero means 3 when DataShards is set. It must
	// be at most 32.
	ParityShards int

	// Adaptive lets each sender adjust its parity count to the loss its
	// peer reports, between 0 and MaxParity: more parity when loss rises,
	// none on a clean link.
	Adaptive bool

	// MaxParity bounds the parity count in adaptive mode, and on a server
	// the most a client may ask for. Zero means ParityShards. It must be at
	// least ParityShards and at most 32.
	MaxParity int

	// GroupDelay is how long a partly filled group may wait for more data
	// before its parity is sent anyway, so that sparse traffic is protected
	// too. Zero means 20 ms. Negative is invalid.
	GroupDelay time.Duration
}

// DefaultConfig returns a Config with every field at its default. Keys
// still have to be filled in.
func DefaultConfig() *Config {
	return &Config{
		KCP:               KCPConfig{Interval: defaultKCPInterval, FastResend: defaultFastResend, SendWindow: defaultWindow, RecvWindow: defaultWindow},
		HeartbeatInterval: defaultHeartbeatInterval,
		IdleTimeout:       defaultIdleTimeout,
		HandshakeTimeout:  defaultHandshakeTimeout,
		Workers:           runtime.GOMAXPROCS(0),
		MaxMessageSize:    defaultMaxMessageSize,
		SendQueueBytes:    defaultSendQueueBytes,
		SocketBufferBytes: defaultSocketBuffer,
		RekeyAfterTime:    defaultRekeyAfterTime,
		RekeyAfterPackets: defaultRekeyAfterPackets,
		CloseLinger:       defaultCloseLinger,
	}
}

// Clone returns a deep copy of c: its slices (Lanes, ConnectData,
// Identity.AllowedClientKeys) are copied too, so changing the clone never
// changes c. Funcs and the Logger and Tracer are shared. A nil c clones
// DefaultConfig().
func (c *Config) Clone() *Config {
	if c == nil {
		return DefaultConfig()
	}
	cp := *c
	cp.Lanes = append([]LaneConfig(nil), c.Lanes...)
	if c.ConnectData != nil {
		cp.ConnectData = append([]byte{}, c.ConnectData...)
	}
	cp.Identity.AllowedClientKeys = append([]PublicKey(nil), c.Identity.AllowedClientKeys...)
	if c.hooks != nil {
		h := *c.hooks
		cp.hooks = &h
	}
	return &cp
}

// Validate reports the first invalid field as a *ConfigError. Keys are
// checked by NewServer and NewClient, which know which ones they need.
func (c *Config) Validate() error {
	_, err := c.resolve()
	return err
}

// settings is a Config with every default applied: the form the rest of the
// package reads.
type settings struct {
	privateKey      PrivateKey
	serverPublicKey PublicKey
	cipher          Cipher

	kcpInterval   time.Duration
	kcpNoDelay    bool
	kcpFastResend int // 0 = disabled
	kcpCongestion bool
	sendWindow    int
	recvWindow    int
	// mtu is the largest datagram this side sends or accepts: KCP.MTU,
	// or with mtuAuto the larger of the two default sizes. A session's
	// own limit is mtuFor its peer.
	mtu     int
	mtuAuto bool // KCP.MTU is zero: the limit follows the peer's address family

	fec fecParams

	heartbeat        time.Duration // <= 0: disabled
	idleTimeout      time.Duration // <= 0: disabled
	handshakeTimeout time.Duration
	workers          int
	maxMessage       int
	sendQueue        int
	socketBuffer     int
	logger           *slog.Logger
	tracer           *slog.Logger
	fecGroupDelay    time.Duration
	lanes            []LaneConfig // at least one
	connectData      []byte       // nil: none (the plain initiation)
	minPacket        int          // the smallest packet size MaxMessageSize fits (negotiate.go)
	maxSessions      int          // 0: no limit
	admission        admissionSettings
	identity         identitySettings

	rekeyAfterTime    time.Duration // <= 0: disabled
	rekeyAfterPackets int64         // <= 0: disabled
	closeLinger       time.Duration // < 0: abort at once
	hooks             testHooks     // zero: none (hooks.go)
	aesHardware       bool          // this side reports AES instructions (hooks.aes)
	congestion        congestionSettings
}

func pick[T int | int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

func (c *Config) resolve() (*settings, error) {
	if c == nil {
		c = DefaultConfig()
	}
	s := &settings{
		privateKey:       c.PrivateKey,
		serverPublicKey:  c.ServerPublicKey,
		cipher:           c.Cipher,
		kcpInterval:      pick(c.KCP.Interval, defaultKCPInterval),
		kcpNoDelay:       !c.KCP.DisableNoDelay,
		kcpFastResend:    pick(c.KCP.FastResend, defaultFastResend),
		kcpCongestion:    c.KCP.CongestionControl,
		sendWindow:       pick(c.KCP.SendWindow, defaultWindow),
		recvWindow:       pick(c.KCP.RecvWindow, defaultWindow),
		mtu:              pick(c.KCP.MTU, defaultMTUIPv4),
		mtuAuto:          c.KCP.MTU == 0,
		heartbeat:        pick(c.HeartbeatInterval, defaultHeartbeatInterval),
		idleTimeout:      pick(c.IdleTimeout, defaultIdleTimeout),
		handshakeTimeout: pick(c.HandshakeTimeout, defaultHandshakeTimeout),
		workers:          pick(c.Workers, runtime.GOMAXPROCS(0)),
		maxMessage:       pick(c.MaxMessageSize, defaultMaxMessageSize),
		sendQueue:        pick(c.SendQueueBytes, defaultSendQueueBytes),
		socketBuffer:     pick(c.SocketBufferBytes, defaultSocketBuffer),
		logger:           c.Logger,
		tracer:           c.Tracer,
		lanes:            append([]LaneConfig(nil), c.Lanes...),

		rekeyAfterTime:    pick(c.RekeyAfterTime, defaultRekeyAfterTime),
		rekeyAfterPackets: pick(c.RekeyAfterPackets, defaultRekeyAfterPackets),
		closeLinger:       pick(c.CloseLinger, defaultCloseLinger),
	}
	if c.hooks != nil {
		s.hooks = *c.hooks
	}
	if len(s.lanes) == 0 {
		s.lanes = []LaneConfig{{}}
	}
	if len(c.ConnectData) > 0 {
		s.connectData = append([]byte{}, c.ConnectData...)
	}
	s.fec = fecParams{
		data:      c.FEC.DataShards,
		parity:    c.FEC.ParityShards,
		maxParity: c.FEC.MaxParity,
		adaptive:  c.FEC.Adaptive,
	}
	fecDelay := pick(c.FEC.GroupDelay, defaultFECGroupDelay)
	if s.fec.data > 0 {
		s.fec.parity = pick(s.fec.parity, defaultFECParity)
		s.fec.maxParity = pick(s.fec.maxParity, s.fec.parity)
	}
	s.fecGroupDelay = fecDelay
	var aes aesOverride
	if c.hooks != nil {
		aes = c.hooks.aes
	}
	switch aes {
	case aesPresent:
		s.aesHardware = true
	case aesDetect:
		s.aesHardware = ucrypto.HasAESHardware()
	}
	if s.kcpFastResend < 0 {
		s.kcpFastResend = 0
	}
	bad := func(field, format string, args ...any) (*settings, error) {
		return nil, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case s.cipher != 0 && !s.cipher.Valid():
		return bad("Cipher", "unknown cipher %d", uint8(s.cipher))
	case s.kcpInterval < 10*time.Millisecond || s.kcpInterval > 5*time.Second:
		return bad("KCP.Interval", "%v is outside [10ms, 5s]", s.kcpInterval)
	case s.sendWindow < 0:
		return bad("KCP.SendWindow", "negative (%d)", s.sendWindow)
	case s.recvWindow < 0:
		return bad("KCP.RecvWindow", "negative (%d)", s.recvWindow)
	case s.sendWindow > maxWindow:
		return bad("KCP.SendWindow", "%d exceeds %d (the wire carries 16-bit sequence numbers, exact while a window stays below 2^15)", s.sendWindow, maxWindow)
	case s.recvWindow > maxWindow:
		return bad("KCP.RecvWindow", "%d exceeds %d (the wire carries 16-bit sequence numbers, exact while a window stays below 2^15)", s.recvWindow, maxWindow)
	case s.mtu < minMTU || s.mtu > maxMTU:
		return bad("KCP.MTU", "%d is outside [%d, %d]", s.mtu, minMTU, maxMTU)
	case len(c.ConnectData) > MaxConnectDataSize:
		return bad("ConnectData", "%d bytes exceed MaxConnectDataSize (%d)", len(c.ConnectData), MaxConnectDataSize)
	case s.handshakeTimeout < 0:
		return bad("HandshakeTimeout", "negative (%v)", s.handshakeTimeout)
	case s.workers < 0:
		return bad("Workers", "negative (%d)", s.workers)
	case s.workers > 1024:
		return bad("Workers", "%d exceeds 1024", s.workers)
	case s.maxMessage < 0:
		return bad("MaxMessageSize", "negative (%d)", s.maxMessage)
	case s.sendQueue < 0:
		return bad("SendQueueBytes", "negative (%d)", s.sendQueue)
	case s.fec.data < 0 || s.fec.data > fec.MaxDataShards:
		return bad("FEC.DataShards", "%d is outside [0, %d]", s.fec.data, fec.MaxDataShards)
	case s.fec.parity < 0 || s.fec.parity > fec.MaxParityShards:
		return bad("FEC.ParityShards", "%d is outside [0, %d]", s.fec.parity, fec.MaxParityShards)
	case s.fec.maxParity < 0 || s.fec.maxParity > fec.MaxParityShards:
		return bad("FEC.MaxParity", "%d is outside [0, %d]", s.fec.maxParity, fec.MaxParityShards)
	case s.fec.data > 0 && s.fec.maxParity < s.fec.parity:
		return bad("FEC.MaxParity", "%d is below ParityShards %d", s.fec.maxParity, s.fec.parity)
	case s.fec.data == 0 && (c.FEC.ParityShards != 0 || c.FEC.MaxParity != 0 || c.FEC.Adaptive):
		return bad("FEC.DataShards", "must be set when other FEC fields are")
	case fecDelay < 0:
		return bad("FEC.GroupDelay", "negative (%v)", fecDelay)
	case s.rekeyAfterTime > 0 && s.rekeyAfterTime < minRekeyAfterTime:
		return bad("RekeyAfterTime", "%v is below %v", s.rekeyAfterTime, minRekeyAfterTime)
	case s.rekeyAfterPackets > 0 && s.rekeyAfterPackets < minRekeyAfterPackets:
		return bad("RekeyAfterPackets", "%d is below %d", s.rekeyAfterPackets, minRekeyAfterPackets)
	case s.heartbeat > 0 && s.idleTimeout > 0 && s.idleTimeout <= s.heartbeat:
		return bad("IdleTimeout", "%v must exceed HeartbeatInterval %v", s.idleTimeout, s.heartbeat)
	}
	if err := validateLanes(s.lanes); err != nil {
		return nil, err
	}
	if limit := s.maxMessageLimit(); s.maxMessage > limit {
		return bad("MaxMessageSize", "%d exceeds %d, the most that fits with its %d-byte lane header in min(255, KCP.RecvWindow-1) segments of %d bytes at this MTU", s.maxMessage, limit, laneHeaderMax, s.mssAt(s.smallestMTU()))
	}
	s.minPacket = s.computeMinMTU()
	if s.sendQueue < s.maxMessage {
		return bad("SendQueueBytes", "%d is smaller than MaxMessageSize %d", s.sendQueue, s.maxMessage)
	}
	if s.maxSessions = c.MaxSessions; s.maxSessions < 0 {
		return bad("MaxSessions", "negative (%d)", s.maxSessions)
	}
	cong, err := c.resolveCongestion()
	if err != nil {
		return nil, err
	}
	s.congestion = cong
	adm, err := c.Admission.resolve()
	if err != nil {
		return nil, err
	}
	s.admission = adm
	id, err := c.Identity.resolve()
	if err != nil {
		return nil, err
	}
	s.identity = id
	return s, nil
}

// mss is the KCP payload per segment: the MTU less the transport overhead
// and KCP's own segment header.
func (s *settings) mss() int { return s.mssAt(s.mtu) }

// mssAt and frameRoomAt are mss and frameRoom for a
// session whose packet size is mtu (the smaller of the two sides', see
// negotiate.go), with the FEC room reserved whenever this side is
// configured for FEC: the smallest sizes a session of this configuration
// uses, which the bounds (MaxMessageSize, minMSS) assume.
func (s *settings) mssAt(mtu int) int { return s.mssSized(mtu, s.fecConfigured()) }

// mssSized is the MSS at packet size mtu, with the FEC room reserved when
// fecRoom is set (Conn.fecSized).
func (s *settings) mssSized(mtu int, fecRoom bool) int {
	return s.kcpMTUSized(mtu, fecRoom) - wire.SegmentHeaderSize
}

// kcpMTUFor is the KCP MTU for a frame body of room bytes (after the lane
// byte, if any): kcp-go counts 24 bytes per segment header, and the wire's
// records (internal/wire record.go) are at least wire.RecordSaving bytes
// shorter than the segments of any frame kcp-go builds, so a frame of one
// full-size segment exactly fills the datagram and any frame of several
// still fits. The one place the KCP MTU, and from it the MSS, is derived
// from a packet size.
func kcpMTUFor(room int) int { return room + wire.RecordSaving }

// fecFraming is what carrying a frame as an FEC shard adds to it: the
// shard header, the 2 bytes by which a parity shard exceeds the group's
// largest packet, and the inner frame type byte (section 9 of
// docs/protocol.md): 13 bytes.
const fecFraming = fec.HeaderSize + fecParityExtra + wire.FrameHeaderSize

// fecConfigured reports whether this side is configured for FEC: a
// session may then reserve the FEC room (fecFraming) in its packets.
func (s *settings) fecConfigured() bool { return s.fec.data > 0 }

// fecFixed reports whether this side is configured for fixed (not
// adaptive) FEC: its sessions reserve the FEC room in every packet, and
// its datagrams fit a shard (MaxDatagramSize).
func (s *settings) fecFixed() bool { return s.fec.data > 0 && !s.fec.adaptive }

// frameRoom is the most frame body one datagram carries: what remains
// after the transport header, the frame type byte and the AEAD tag, and,
// when FEC may be on, the FEC room (fecFraming). frameRoomAt reserves it
// whenever this side is configured for FEC: the smallest frame room a
// session of this configuration uses. A session's own sizing follows its
// FEC state (Conn.fecSized, frameRoomSized).
func (s *settings) frameRoom() int { return s.frameRoomAt(s.mtu) }

func (s *settings) frameRoomAt(mtu int) int { return frameRoomSized(mtu, s.fecConfigured()) }

// frameRoomSized is the frame room at packet size mtu, less the FEC room when
// fecRoom is set: the most frame body an inner frame may have to fit an
// FEC shard in one datagram.
func frameRoomSized(mtu int, fecRoom bool) int {
	m := mtu - wire.TransportOverhead
	if fecRoom {
		m -= fecFraming
	}
	return m
}

// kcpMTU is the MTU handed to each lane's KCP: kcpMTUFor the frame room
// less the lane byte when there is more than one lane. kcpMTU is the
// Factory's tuning (tuneKCP): at the configured MTU, with the FEC room
// reserved on a side configured for fixed FEC; an adaptive session starts
// without it (Conn.fecSized), and a session whose size differs gets its
// own (arq.Config.TuneMTU).
func (s *settings) kcpMTU() int { return s.kcpMTUSized(s.mtu, s.fecFixed()) }

// kcpMTUSized is the KCP MTU at packet size mtu, with the FEC room
// reserved when fecRoom is set.
func (s *settings) kcpMTUSized(mtu int, fecRoom bool) int {
	if len(s.lanes) > 1 {
		return kcpMTUFor(frameRoomSized(mtu, fecRoom) - laneIDSize)
	}
	return kcpMTUFor(frameRoomSized(mtu, fecRoom))
}

// fecMaxPacket is the largest packet handed to the FEC encoder at the
// configured MTU: an inner frame, type byte included, that fits a shard.
func (s *settings) fecMaxPacket() int { return frameRoomSized(s.mtu, true) + wire.FrameHeaderSize }

// maxMessageLimit is the largest MaxMessageSize that fits, with its lane
// message header, in min(255, RecvWindow-1) segments at the smallest
// packet size this side may use as its own limit (smallestMTU).
func (s *settings) maxMessageLimit() int { return s.maxMessageLimitAt(s.smallestMTU()) }

// mtuFor is this side's packet size limit toward peer: KCP.MTU, or by
// default the most a 1500-byte Ethernet MTU carries in the peer's address
// family (an IPv4-mapped address counts as IPv4; an address that is
// neither gets the smaller IPv6 size).
func (s *settings) mtuFor(peer netip.AddrPort) int {
	if !s.mtuAuto {
		return s.mtu
	}
	if peer.Addr().Unmap().Is4() {
		return defaultMTUIPv4
	}
	return defaultMTUIPv6
}

// smallestMTU is the smallest value mtuFor returns for any peer.
func (s *settings) smallestMTU() int {
	if s.mtuAuto {
		return defaultMTUIPv6
	}
	return s.mtu
}

func (s *settings) maxMessageLimitAt(mtu int) int {
	frags := min(maxFragments, s.recvWindow-1)
	return frags*s.mssAt(mtu) - laneHeaderMax
}
