package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/uxp-go/uxp"
)

// `uxp tunnel` forwards TCP connections over one uxp session, multiplexed
// with smux: the job kcptun does, with the server authenticated by a
// pinned key and the clients by a pre-shared key and/or their own keys
// (tunnel_auth.go).
//
//	TCP client -> tunnel client (-listen) == uxp/smux ==> tunnel server -> -target
//
// Each TCP connection becomes one smux stream; when either end of it
// finishes, the whole connection is closed (see forward).

// Environment variables the tunnel reads keys from, so that no secret has
// to appear on a command line (and in shell history or ps output).
const (
	envTunnelKey       = "UXP_TUNNEL_KEY"        // server: base64 private key
	envTunnelServerKey = "UXP_TUNNEL_SERVER_KEY" // client: base64 server public key
	envTunnelPSK       = "UXP_TUNNEL_PSK"        // both: base64 pre-shared key
	envTunnelClientKey = "UXP_TUNNEL_CLIENT_KEY" // client: base64 private key (Noise IK)
)

const tunnelUsage = `Usage:

	uxp tunnel server -listen :4000 -target 127.0.0.1:22 -key FILE -psk-file FILE
	uxp tunnel client -listen 127.0.0.1:2222 -server HOST:4000 -server-key BASE64 -psk-file FILE

Forward TCP connections over an encrypted uxp session. The server's
private key comes from -key FILE or the ` + envTunnelKey + ` environment
variable (never the command line). The client pins the server's public key
from -server-key, -server-key-file FILE or ` + envTunnelServerKey + `.

The server's public key is not a secret, so the server also authenticates
its clients, and refuses to start unless told how: a pre-shared key that
both ends hold (-psk-file FILE or ` + envTunnelPSK + `; make one with
"uxp keygen -private-out FILE") and/or a list of allowed client public keys
(-allow-client-keys FILE; each client then has its own key pair, given
with -client-key FILE or ` + envTunnelClientKey + `). -insecure-anonymous
lets anyone who knows the server's public key use the tunnel.

Tuning, with kcptun's flag names (the same on both ends):

	-mode fast|normal|manual   KCP profile (default fast):
	         fast:   no-delay RTO, 10 ms interval, fast resend 2, no
	                 congestion window (kcptun's fast3; uxp's game profile)
	         normal: normal RTO, 40 ms interval, fast resend 2, congestion
	                 window on (for links shared with other traffic)
	         manual: -nodelay, -interval MS, -resend N, -nc as given
	-mtu, -sndwnd, -rcvwnd     UDP payload size and KCP windows
	-fec off|D/P|adaptive      forward error correction (the server's is
	                           the most a client may ask for)
	-cipher chacha20|salsa20   data cipher; both ends must agree
	-sockbuf, -smuxbuf, -streambuf   socket, smux session and stream buffers
	-keepalive SECONDS         uxp heartbeat; idle timeout max(10, 3x) s
	-statsinterval SECONDS     log transport statistics periodically
	-metrics ADDR              Prometheus metrics at /metrics (server: uxp_*; client: uxp_client_*)
	-c FILE                    JSON object of flag names and values, e.g.
	                           {"mode": "normal", "sndwnd": 2048,
	                            "fec": "10/3", "target": "127.0.0.1:22"};
	                           command-line flags override it

SIGINT or SIGTERM shuts the tunnel down cleanly.

Run "uxp tunnel server -h" or "uxp tunnel client -h" for the flags.
`

/* Implementation constants */
const (
	tunnelDialTimeout = 10 * time.Second // TCP dial to the target
)

// tunnelCommand implements `uxp tunnel server|client`.
func tunnelCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tunnelUsage)
		return &usageError{errors.New("missing server or client")}
	}
	switch args[0] {
	case "server":
		return tunnelServerCommand(ctx, args[1:], stderr)
	case "client":
		return tunnelClientCommand(ctx, args[1:], stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, tunnelUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "uxp tunnel: unknown mode %q\n\n%s", args[0], tunnelUsage)
		return &usageError{fmt.Errorf("unknown tunnel mode %q", args[0])}
	}
}

// newTunnelLogger logs one line per event, as text, to w.
func newTunnelLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}

// readKeyFile reads a base64 key from the first line of a file.
func readKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// readSecret returns the base64 text of a key from file (given with the
// flag named flag) or else from the environment variable env, and where it
// came from; "" when neither is set. Secrets are never taken from argv.
func readSecret(flag, file, env string, getenv func(string) string) (s, from string, err error) {
	switch {
	case file != "":
		k, err := readKeyFile(file)
		if err != nil {
			return "", "", fmt.Errorf("reading %s: %w", flag, err)
		}
		if k == "" {
			return "", "", fmt.Errorf("%s %s: file is empty", flag, file)
		}
		return k, flag + " " + file, nil
	case getenv(env) != "":
		return strings.TrimSpace(getenv(env)), env, nil
	}
	return "", "", nil
}

// loadPrivateKey takes the server key from file, or else from the
// environment.
func loadPrivateKey(file string, getenv func(string) string) (uxp.PrivateKey, error) {
	s, from, err := readSecret("-key", file, envTunnelKey, getenv)
	if err != nil {
		return uxp.PrivateKey{}, err
	}
	if s == "" {
		return uxp.PrivateKey{}, fmt.Errorf("no private key: use -key FILE or set %s (generate one with uxp keygen)", envTunnelKey)
	}
	k, err := uxp.ParsePrivateKey(s)
	if err != nil {
		return uxp.PrivateKey{}, fmt.Errorf("%s: %w", from, err)
	}
	return k, nil
}

// loadPublicKey takes the pinned server key from the flag, a file, or the
// environment, in that order.
func loadPublicKey(flagValue, file string, getenv func(string) string) (uxp.PublicKey, error) {
	var s, from string
	switch {
	case flagValue != "":
		s, from = flagValue, "-server-key"
	case file != "":
		k, err := readKeyFile(file)
		if err != nil {
			return uxp.PublicKey{}, fmt.Errorf("reading -server-key-file: %w", err)
		}
		s, from = k, "-server-key-file "+file
	case getenv(envTunnelServerKey) != "":
		s, from = strings.TrimSpace(getenv(envTunnelServerKey)), envTunnelServerKey
	default:
		return uxp.PublicKey{}, fmt.Errorf("no server key: use -server-key, -server-key-file or %s", envTunnelServerKey)
	}
	k, err := uxp.ParsePublicKey(s)
	if err != nil {
		return uxp.PublicKey{}, fmt.Errorf("%s: %w", from, err)
	}
	return k, nil
}

// forward copies a and b into each other until one direction ends (EOF
// or an error), then closes both, and logs the connection's close with
// its byte counts. up counts bytes from a to b.
//
// Half-closes are not passed on: when one side finishes, the connection
// ends, as in kcptun. smux does have Stream.CloseWrite, but using it
// loses data (checked with v1.5.56): when the second FIN of a stream arrives, smux frees the
// stream together with the data its reader has not consumed yet (see the
// notes of issue 5 for the reproduction). Protocols that shut down their
// write side and then wait for a reply are therefore not supported.
func forward(log *slog.Logger, id uint64, a, b io.ReadWriteCloser) {
	start := time.Now()
	var up, down int64
	var upErr, downErr error
	var wg sync.WaitGroup
	wg.Add(2)
	var closeOnce sync.Once
	closeBoth := func() {
		closeOnce.Do(func() {
			a.Close()
			b.Close()
		})
	}
	copyHalf := func(dst, src io.ReadWriteCloser, n *int64, errp *error) {
		defer wg.Done()
		// Plain Read/Write only: smux's Stream.WriteTo reports the end of
		// a stream as io.EOF rather than nil.
		*n, *errp = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, 32<<10))
		// Everything src sent has been written to dst (smux and TCP both
		// keep sending it after Close), so the other direction can stop.
		closeBoth()
	}
	go copyHalf(b, a, &up, &upErr)
	go copyHalf(a, b, &down, &downErr)
	wg.Wait()
	attrs := []any{"conn", id, "sent", up, "received", down, "duration", time.Since(start).Round(time.Millisecond)}
	if err := errors.Join(upErr, downErr); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrClosedPipe) {
		attrs = append(attrs, "err", err)
	}
	log.Info("tunnel: close", attrs...)
}

// connSet tracks live connections so that shutdown can close them.
type connSet struct {
	mu     sync.Mutex
	m      map[io.Closer]struct{}
	closed bool
}

// add registers c; it returns false (and closes c) after closeAll.
func (s *connSet) add(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	if s.m == nil {
		s.m = make(map[io.Closer]struct{})
	}
	s.m[c] = struct{}{}
	return true
}

func (s *connSet) remove(c io.Closer) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	m := s.m
	s.m = nil
	s.mu.Unlock()
	for c := range m {
		c.Close()
	}
}

// newFlagSet makes a flag set for a tunnel mode with its usage text.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}
