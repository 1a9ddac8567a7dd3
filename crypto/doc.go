// Package crypto implements the per-packet AEADs of the uxp transport.
//
// Each direction of a session has its own 32-byte session key, derived by the
// handshake, and its own 64-bit packet counter.
// The counter is the whole nonce, so every packet is sealed under a unique
// (key, counter) pair and the receiver's replay window
// (internal/replay) works on the same number.
//
// The package is pure code: it does no I/O and starts no goroutines.
//
// # Usage
//
//	aead, err := crypto.NewAEAD(crypto.ChaCha20Poly1305, &sendKey)
//	if err != nil { ... }
//	crypto.Zero(sendKey[:]) // NewAEAD keeps its own copy
//
//	// Sender: header is the cleartext packet header, sent in front of
//	// the sealed payload and authenticated as associated data.
//	pkt = append(pkt[:0], header...)
//	pkt = aead.Seal(pkt, counter, payload, header)
//
//	// Receiver: in-place decryption into the ciphertext's own buffer.
//	ct := pkt[len(header):]
//	payload, err := aead.Open(ct[:0], counter, ct, pkt[:len(header)])
//	if err != nil { drop and count; errors.Is(err, crypto.ErrOpen) }
//
// # Suites
//
// ChaCha20Poly1305 (1, the default) is RFC 8439 ChaCha20-Poly1305 from
// golang.org/x/crypto/chacha20poly1305 with the 96-bit nonce
//
//	 0               4                                      12
//	|--- 0x00 x 4 ---|------- counter, little-endian -------|
//
// exactly as WireGuard builds its transport nonces.
//
// Salsa20Poly1305 (2) is this package's own construction: the RFC 8439 AEAD
// with ChaCha20 replaced by Salsa20/20 (golang.org/x/crypto/salsa20/salsa).
// It exists for peers that already use Salsa20; new deployments should use
// ChaCha20Poly1305. Salsa20's 16-byte input block is
//
//	 0                            8                             16
//	|-- counter, little-endian ---|-- block number, little-endian --|
//
// where counter is the packet counter and the block number counts 64-byte
// keystream blocks. For one packet:
//
//  1. Poly1305 key: the first 32 bytes of the keystream of block 0. The
//     other 32 bytes of block 0 are discarded.
//
//  2. Payload: ciphertext = plaintext XOR keystream starting at block 1,
//     byte 0. Keystream bytes used for the one-time key are therefore never
//     also used to encrypt.
//
//  3. Tag: Poly1305 with that one-time key over
//
//     ad || pad16(ad) || ciphertext || pad16(ciphertext) ||
//     le64(len(ad)) || le64(len(ciphertext))
//
//     where pad16(x) is 0 to 15 zero bytes bringing len(x) to a multiple
//     of 16 and le64 is an unsigned 64-bit little-endian length in bytes.
//     The associated data (the packet header) is thus authenticated.
//
//  4. Output: ciphertext || tag, the tag being 16 bytes.
//
// Open recomputes the tag, compares it in constant time
// (crypto/subtle.ConstantTimeCompare) and only then decrypts. The one-time
// key is wiped with [Zero] after use.
//
// AES256GCM (3) is AES-256-GCM from the standard library (crypto/aes,
// crypto/cipher) with the same 96-bit nonce layout as ChaCha20Poly1305. It
// is the fastest suite on CPUs with AES instructions ([HasAESHardware]); in
// software it is slower than ChaCha20Poly1305 and the standard library's
// generic code is not guaranteed constant-time, so it should be selected only
// when both ends have AES hardware. (Negotiating it in the handshake is not
// wired up yet.)
//
// All suites produce the same wire layout for the sealed part of a packet:
//
//	|---------- ciphertext (len(plaintext)) ----------|--- tag (16) ---|
//
// # Concurrency
//
// All AEADs hold only their key after construction and are safe for
// concurrent use by multiple goroutines. In uxp each AEAD is nonetheless
// owned by the worker shard that owns its session. The caller must still
// never seal two packets with the same counter, whichever goroutine does it.
//
// # Limitations
//
// A single packet can carry at most 256 GiB with ChaCha20-Poly1305 and about
// 64 GiB with AES-256-GCM; Seal panics above that, which no datagram can
// reach. Rekeying before the
// counter wraps is the caller's job (see internal/replay.RejectAfter).
//
// # Security
//
// Open returns [ErrOpen] for every failure, so a forged packet reveals
// nothing about why it was rejected, and it never panics on peer input of any
// length. A reused (key, counter) pair breaks confidentiality and lets an
// attacker forge tags for that key; this package cannot detect reuse.
// Salsa20Poly1305 is not a standardised AEAD; it is the RFC 8439
// composition over a different stream cipher, documented above so that it
// can be reviewed and reimplemented. Go cannot guarantee that secret
// material leaves no copies in memory; [Zero] wipes only the slice it is
// given.
package crypto
