//go:build race

package kcpx

// raceEnabled: race builds poison output bytes after the output callback
// returns (Factory.New).
const raceEnabled = true
