package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/uxp-go/uxp"
)

// Client authentication for `uxp tunnel`. Pinning the server's key only
// protects the client: the server's public key is not a secret, so a
// server that accepted anonymous clients would be an open proxy to its
// -target for anyone who knows that key. The server therefore requires a
// pre-shared key (Noise psk2), a list of allowed client keys (Noise IK),
// or both, unless -insecure-anonymous is given.

// errNoClientAuth is returned when a tunnel server would accept anyone.
var errNoClientAuth = errors.New("no client authentication configured: give -psk-file FILE (or set " +
	envTunnelPSK + ") and/or -allow-client-keys FILE; -insecure-anonymous lets anyone who knows the server's public key use the tunnel")

// loadPSK takes the pre-shared key from file, or else from the
// environment; ok is false when neither is set. The encoding is that of
// a key from `uxp keygen` (base64 of 32 bytes, not all zero).
func loadPSK(file string, getenv func(string) string) (psk [uxp.KeySize]byte, ok bool, err error) {
	s, from, err := readSecret("-psk-file", file, envTunnelPSK, getenv)
	if err != nil || s == "" {
		return psk, false, err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	switch {
	case err != nil:
		return psk, false, fmt.Errorf("%s: pre-shared key is not base64: %w", from, err)
	case len(b) != uxp.KeySize:
		return psk, false, fmt.Errorf("%s: pre-shared key has %d bytes, want %d (make one with uxp keygen -private-out FILE)", from, len(b), uxp.KeySize)
	}
	copy(psk[:], b)
	if psk == ([uxp.KeySize]byte{}) {
		return psk, false, fmt.Errorf("%s: pre-shared key is all zero", from)
	}
	return psk, true, nil
}

// loadClientKey takes the client's own private key (Noise IK) from file,
// or else from the environment; ok is false when neither is set.
func loadClientKey(file string, getenv func(string) string) (k uxp.PrivateKey, ok bool, err error) {
	s, from, err := readSecret("-client-key", file, envTunnelClientKey, getenv)
	if err != nil || s == "" {
		return k, false, err
	}
	if k, err = uxp.ParsePrivateKey(s); err != nil {
		return k, false, fmt.Errorf("%s: %w", from, err)
	}
	if _, err := k.PublicKey(); err != nil {
		return k, false, fmt.Errorf("%s: %w", from, err)
	}
	return k, true, nil
}

// loadAllowedKeys reads the client public keys a server accepts: one
// base64 key per line, as `uxp keygen -public-out` writes them. Anything
// after the key on a line is a comment, as are blank lines and lines
// starting with '#'. A file without any key is an error: it would lock
// every client out, which is never what was meant.
func loadAllowedKeys(file string) ([]uxp.PublicKey, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("reading -allow-client-keys: %w", err)
	}
	defer f.Close()
	var keys []uxp.PublicKey
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		k, err := uxp.ParsePublicKey(fields[0])
		if err != nil {
			return nil, fmt.Errorf("-allow-client-keys %s:%d: %w", file, n, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading -allow-client-keys: %w", err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("-allow-client-keys %s: no keys in the file", file)
	}
	return keys, nil
}

// checkClientAuth refuses an identity that would let anyone in, unless
// insecure is set; then it logs a warning that says what that means.
func checkClientAuth(id *uxp.IdentityConfig, insecure bool, log *slog.Logger) error {
	if id.PresharedKey != ([uxp.KeySize]byte{}) || len(id.AllowedClientKeys) > 0 {
		return nil
	}
	if !insecure {
		return errNoClientAuth
	}
	log.Warn("tunnel: INSECURE: -insecure-anonymous: clients are not authenticated; " +
		"anyone who knows this server's public key can use it to open TCP connections to the target")
	return nil
}
