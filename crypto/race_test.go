//go:build race

package crypto

// raceEnabled is true when the race detector is on. sync.Pool drops items at
// random under -race, so allocation counts are only checked without it.
const raceEnabled = true
