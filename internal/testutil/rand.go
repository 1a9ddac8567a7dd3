package testutil

import mrand "math/rand/v2"

// SeededReader is a deterministic io.Reader for tests of pure code that
// takes its randomness as a parameter: the same seed gives the same bytes.
func SeededReader(seed byte) *mrand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return mrand.NewChaCha8(s)
}
