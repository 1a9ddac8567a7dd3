package main

import (
	"context"
	"fmt"
	"time"
)

// The game scenario (issue 14's "what must not get worse" list): a game
// client sends its input at 60 Hz, 200 bytes a tick, and the server
// answers every tick with a 200-byte state message, so each direction
// carries a 60 Hz stream of 200-byte messages, over the loss scenario's
// namespace (5 % random loss each way, netns.go). Each tick carries the
// client's clock and the answer echoes it, so the client measures the age
// of its input when the answer arrives: the round trip, which is what a
// player feels between pressing a key and seeing the result. The server
// answers at once rather than at its own next tick, so the numbers are
// the transport's and not a tick's phase.

// Game stream parameters.
const (
	gameRate = 60  // ticks per second, each way
	gameSize = 200 // bytes per message, the 16-byte bench header included
)

// gameDuration is the measured time of one repetition: -game-duration,
// else 10 s (3 s with -quick).
func gameDuration(o *options) time.Duration {
	switch {
	case o.gameDur > 0:
		return o.gameDur
	case o.quick:
		return 3 * time.Second
	}
	return 10 * time.Second
}

func init() {
	extraScenarios = append(extraScenarios, "game")
	scenarioColumns["game"] = [][2]string{
		{"p50_ms", "p50 ms"},
		{"p99_ms", "p99 ms"},
		{"p999_ms", "p99.9 ms"},
		{"lost", "ticks unanswered"},
		{"wire_bytes_per_msg", "wire bytes/message"},
	}
	scenarioTitles["game"] = fmt.Sprintf("9. Game stream: %d Hz of %d-byte messages each way (client ticks, each answered by a server state message) "+
		"for %v (-game-duration), 5%% random loss each direction (the loss scenario's namespace); round trip from a tick's send to its answer's arrival. "+
		"Ticks unanswered: no answer %v after the last tick. Wire bytes per message: the namespace's loopback tx bytes ÷ the messages sent both ways "+
		"(2 per tick; IP and transport headers, retransmissions, parity and ACKs included)",
		gameRate, gameSize, gameDuration(&options{}), gameGrace)
}

// gameGrace is how long the client waits for the last answers.
const gameGrace = 3 * time.Second

// gameCase runs the 60 Hz game stream for d under 5 % loss each way.
func gameCase(ctx context.Context, sys string, d time.Duration) (map[string]float64, error) {
	res, wire, err := lossyOpenLoop(ctx, sys, gameRate, gameSize, d, gameGrace)
	if err != nil {
		return nil, err
	}
	return gameMetrics(res, wire)
}

// gameMetrics turns a game client's result and the bytes the namespace
// put on the wire into the scenario's metrics.
func gameMetrics(res clientResult, wireBytes int64) (map[string]float64, error) {
	if len(res.RTTNs) == 0 {
		return nil, fmt.Errorf("no answers to %d ticks", res.Sent)
	}
	s := sortedNs(res.RTTNs)
	return map[string]float64{
		"p50_ms":             pct(s, 50) / 1e6,
		"p99_ms":             pct(s, 99) / 1e6,
		"p999_ms":            pct(s, 99.9) / 1e6,
		"max_ms":             s[len(s)-1] / 1e6,
		"lost":               float64(max(res.Sent-len(res.RTTNs), 0)),
		"ticks":              float64(res.Sent),
		"wire_bytes_per_msg": float64(wireBytes) / float64(2*max(res.Sent, 1)),
	}, nil
}
