package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/xtaci/smux"

	"github.com/uxp-go/uxp"
)

// The tunnel's transport tuning, the flags kcptun users know. Both ends
// take the same set; they need not match, except -fec (the server's is
// the most it allows a client to ask for) and -cipher (both ends must use
// the same one, or the handshake fails).
//
// -mode picks the KCP profile:
//
//	mode     no-delay RTO  interval  fast resend  congestion window  like kcptun's
//	fast     on            10 ms     2            off                fast3
//	normal   off           40 ms     2            on                 normal (with nc=0)
//	manual   -nodelay      -interval -resend      !-nc               manual
//
// fast is uxp's own game profile and the default: it resends lost data
// soonest and never slows down for loss. normal is for links shared with
// other traffic: a lost packet shrinks KCP's congestion window, as it does
// TCP's, and the longer interval costs less CPU. manual takes -nodelay,
// -interval (ms), -resend and -nc; they are refused in the other modes.

/* Implementation constants: the defaults of the tuning flags. */
const (
	tunnelWindow     = 1024    // KCP windows: bulk TCP traffic wants more than the game default
	tunnelSendQueue  = 4 << 20 // uxp send queue per session
	tunnelSmuxBuf    = 4 << 20 // smux session receive buffer (kcptun: 4 MiB)
	tunnelStreamBuf  = 1 << 20 // smux per-stream window (kcptun: 2 MiB)
	tunnelSockBuf    = 4 << 20 // SO_SNDBUF/SO_RCVBUF (uxp's default)
	tunnelMTU        = 0       // uxp's default: 1472 bytes to an IPv4 peer, 1452 to an IPv6 one
	tunnelKeepalive  = 3       // seconds: uxp's default heartbeat
	minTunnelIdleOut = 10 * time.Second
)

// tunnelTuning holds the values of the tuning flags.
type tunnelTuning struct {
	mode          string
	noDelay       bool // manual mode only
	interval      int  // ms, manual mode only
	resend        int  // manual mode only
	noCongestion  bool // manual mode only
	mtu           int
	sndWnd        int
	rcvWnd        int
	fec           string
	cipher        string
	sockBuf       int
	smuxBuf       int
	streamBuf     int
	keepalive     int // seconds
	statsInterval int // seconds; 0 turns the stats log off
	metrics       string
}

// manualFlags are the flags that only -mode manual reads.
var manualFlags = []string{"nodelay", "interval", "resend", "nc"}

// tuningFlags registers the tuning flags on fs.
func tuningFlags(fs *flag.FlagSet, t *tunnelTuning) {
	fs.StringVar(&t.mode, "mode", "fast", "KCP profile: fast, normal or manual (see \"uxp tunnel -h\")")
	fs.BoolVar(&t.noDelay, "nodelay", true, "manual mode: KCP no-delay RTO (30 ms minimum, slow back-off)")
	fs.IntVar(&t.interval, "interval", 10, "manual mode: KCP update interval in `ms` (10 to 5000)")
	fs.IntVar(&t.resend, "resend", 2, "manual mode: fast resend after this many duplicate ACKs (0 turns it off)")
	fs.BoolVar(&t.noCongestion, "nc", true, "manual mode: no congestion window")
	fs.IntVar(&t.mtu, "mtu", tunnelMTU, "largest UDP payload in `bytes` (576 to 1500; 0: uxp's default, 1472 over IPv4 and 1452 over IPv6)")
	fs.IntVar(&t.sndWnd, "sndwnd", tunnelWindow, "KCP send window in `segments`")
	fs.IntVar(&t.rcvWnd, "rcvwnd", tunnelWindow, "KCP receive window in `segments`")
	fs.StringVar(&t.fec, "fec", "off", "forward error correction: off, DATA/PARITY (e.g. 10/3), or adaptive (10 data, up to 6 parity); on the server, the most a client may ask for")
	fs.StringVar(&t.cipher, "cipher", "auto", "data cipher: auto (negotiated), aes, chacha20 or salsa20 (pinned: the other end must allow it)")
	fs.IntVar(&t.sockBuf, "sockbuf", tunnelSockBuf, "UDP socket send and receive buffer in `bytes` (the kernel may cap it)")
	fs.IntVar(&t.smuxBuf, "smuxbuf", tunnelSmuxBuf, "smux receive buffer of a session in `bytes`")
	fs.IntVar(&t.streamBuf, "streambuf", tunnelStreamBuf, "smux window of one stream in `bytes`")
	fs.IntVar(&t.keepalive, "keepalive", tunnelKeepalive, "uxp heartbeat interval in `seconds`; a session is closed after max(10, 3×keepalive) silent seconds (use the same value on both ends)")
	fs.IntVar(&t.statsInterval, "statsinterval", 0, "log transport statistics every this many `seconds` (0: never)")
}

// config is the uxp Config that t describes, keys aside. set lists the
// flags given on the command line or in the config file.
func (t *tunnelTuning) config(set map[string]bool) (*uxp.Config, error) {
	cfg := &uxp.Config{
		KCP:               uxp.KCPConfig{SendWindow: t.sndWnd, RecvWindow: t.rcvWnd, MTU: t.mtu},
		SendQueueBytes:    tunnelSendQueue,
		SocketBufferBytes: t.sockBuf,
	}
	switch t.mode {
	case "fast":
		// The zero KCPConfig fields are the fast game profile.
	case "normal":
		cfg.KCP.DisableNoDelay = true
		cfg.KCP.Interval = 40 * time.Millisecond
		cfg.KCP.FastResend = 2
		cfg.KCP.CongestionControl = true
	case "manual":
		cfg.KCP.DisableNoDelay = !t.noDelay
		cfg.KCP.Interval = time.Duration(t.interval) * time.Millisecond
		cfg.KCP.FastResend = t.resend
		if t.resend == 0 {
			cfg.KCP.FastResend = -1 // zero means the default in KCPConfig
		}
		cfg.KCP.CongestionControl = !t.noCongestion
	default:
		return nil, fmt.Errorf("-mode %q: want fast, normal or manual", t.mode)
	}
	if t.mode != "manual" {
		for _, name := range manualFlags {
			if set[name] {
				return nil, fmt.Errorf("-%s is read only with -mode manual (the mode is %s)", name, t.mode)
			}
		}
	}
	if t.sockBuf < 1 {
		return nil, fmt.Errorf("-sockbuf %d: must be positive", t.sockBuf)
	}
	if t.keepalive < 1 {
		return nil, fmt.Errorf("-keepalive %d: must be at least 1 second", t.keepalive)
	}
	if t.statsInterval < 0 {
		return nil, fmt.Errorf("-statsinterval %d: must not be negative", t.statsInterval)
	}
	cfg.HeartbeatInterval = time.Duration(t.keepalive) * time.Second
	cfg.IdleTimeout = max(minTunnelIdleOut, 3*cfg.HeartbeatInterval)
	var err error
	if cfg.FEC, err = parseFEC(t.fec); err != nil {
		return nil, fmt.Errorf("-fec: %w", err)
	}
	if cfg.Cipher, err = parseCipher(t.cipher); err != nil {
		return nil, fmt.Errorf("-cipher: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := smux.VerifyConfig(t.smux()); err != nil {
		return nil, fmt.Errorf("-smuxbuf/-streambuf: %w", err)
	}
	return cfg, nil
}

// smux is the smux configuration t describes. Version 2 has per-stream
// flow control, so one slow TCP reader cannot stall the other streams of
// the session. The per-stream window bounds one stream's throughput to
// window/RTT; the default 1 MiB lets a single transfer use most of the uxp
// window.
func (t *tunnelTuning) smux() *smux.Config {
	c := smux.DefaultConfig()
	c.Version = 2
	c.MaxReceiveBuffer = t.smuxBuf
	c.MaxStreamBuffer = t.streamBuf
	return c
}

// defaultTuning is the tuning with every flag at its default.
func defaultTuning() *tunnelTuning {
	var t tunnelTuning
	tuningFlags(flag.NewFlagSet("", flag.ContinueOnError), &t)
	return &t
}

// tunnelConfig is the default uxp configuration of both ends.
func tunnelConfig() *uxp.Config {
	cfg, err := defaultTuning().config(nil)
	if err != nil {
		panic("uxp tunnel: default tuning is invalid: " + err.Error())
	}
	return cfg
}

// smuxConfig is the default smux configuration of both ends.
func smuxConfig() *smux.Config { return defaultTuning().smux() }

// parseTunnelFlags parses args into fs after applying the -c config file,
// if any: a JSON object whose keys are flag names (without the dash) and
// whose values are strings, numbers or booleans. A flag given on the
// command line overrides the file. It returns the set of flags given
// either way.
func parseTunnelFlags(fs *flag.FlagSet, args []string) (map[string]bool, error) {
	configFile := fs.String("c", "", "JSON config `FILE`: {\"flag-name\": value, ...} with the flags' names; command-line flags override it")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *configFile == "" {
		return set, nil
	}
	values, err := readTunnelConfigFile(*configFile)
	if err != nil {
		return nil, err
	}
	for name, v := range values {
		if name == "c" || fs.Lookup(name) == nil {
			return nil, fmt.Errorf("%s: unknown setting %q", *configFile, name)
		}
		if set[name] {
			continue // the command line wins
		}
		if err := fs.Set(name, v); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", *configFile, name, err)
		}
		set[name] = true
	}
	return set, nil
}

// readTunnelConfigFile reads a -c file into flag-name -> value text.
func readTunnelConfigFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-c: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("-c %s: %w", path, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("-c %s: data after the JSON object", path)
	}
	out := make(map[string]string, len(raw))
	for name, v := range raw {
		switch v := v.(type) {
		case string:
			out[name] = v
		case json.Number:
			out[name] = v.String()
		case bool:
			out[name] = strconv.FormatBool(v)
		default:
			return nil, fmt.Errorf("-c %s: %q: want a string, number or boolean", path, name)
		}
	}
	return out, nil
}
