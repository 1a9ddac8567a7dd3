package crypto

import "errors"

// ErrOpen is returned by [AEAD.Open] for every failure: a bad tag, a
// ciphertext shorter than [TagSize], a wrong key, counter or associated data.
// The cause is deliberately not distinguished, so that a peer learns nothing
// from how a forged packet was rejected.
var ErrOpen = errors.New("uxp/crypto: message authentication failed")

// errUnknownSuite is wrapped by NewAEAD together with the offending value.
var errUnknownSuite = errors.New("uxp/crypto: unknown cipher suite")
