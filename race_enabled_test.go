//go:build race

package uxp

// raceEnabled scales heavy tests down under the race detector and skips
// allocation counts, which it makes meaningless.
const raceEnabled = true
