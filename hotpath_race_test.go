//go:build race

package uxp

// hotPathRace: the race detector makes sync.Pool drop items on purpose, so
// allocation counts mean nothing under it.
const hotPathRace = true
