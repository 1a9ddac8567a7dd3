//go:build !race

package kcpx

const raceEnabled = false
