//go:build !race

package uxp

// raceEnabled scales heavy tests down under the race detector.
const raceEnabled = false
