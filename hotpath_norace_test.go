//go:build !race

package uxp

const hotPathRace = false
