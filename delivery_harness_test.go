package uxp

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// laneEvent is one message or datagram as a laneRecorder saw it.
type laneEvent struct {
	lane int // -1 for a datagram
	data []byte
	at   time.Time
}

// laneRecorder records every lane message and datagram with its arrival
// time (virtual inside synctest).
type laneRecorder struct {
	NopHandler
	mu     sync.Mutex
	msgs   []laneEvent
	dgrams []laneEvent
}

func (r *laneRecorder) OnNewLaneDataComing(c *Conn, lane int, data []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, laneEvent{lane, append([]byte(nil), data...), time.Now()})
	r.mu.Unlock()
}

func (r *laneRecorder) OnNewDatagramComing(c *Conn, msg []byte) {
	r.mu.Lock()
	r.dgrams = append(r.dgrams, laneEvent{-1, append([]byte(nil), msg...), time.Now()})
	r.mu.Unlock()
}

func (r *laneRecorder) snapshot() (msgs, dgrams []laneEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs), slices.Clone(r.dgrams)
}

// onLane returns the messages of one lane.
func onLane(evs []laneEvent, lane int) []laneEvent {
	var out []laneEvent
	for _, e := range evs {
		if e.lane == lane {
			out = append(out, e)
		}
	}
	return out
}

// serverRecorder makes every server session report to the returned
// laneRecorder (from OnReady, before any message can be delivered).
func serverRecorder(p *simPair) *laneRecorder {
	rec := &laneRecorder{}
	p.srvH.newConn = func() *recordConn {
		r := newRecordConn()
		r.onReady = func(c *Conn) { c.SetHandler(rec) }
		return r
	}
	return rec
}

// stampedMessage is message i of a stream: index, send time (virtual ns),
// then filler up to size bytes.
func stampedMessage(i, size int) []byte {
	b := make([]byte, max(size, 12))
	binary.LittleEndian.PutUint32(b, uint32(i))
	binary.LittleEndian.PutUint64(b[4:], uint64(time.Now().UnixNano()))
	for j := 12; j < len(b); j++ {
		b[j] = byte(i + j)
	}
	return b
}

func stampIndex(b []byte) int                { return int(binary.LittleEndian.Uint32(b)) }
func stampSent(b []byte) time.Time           { return time.Unix(0, int64(binary.LittleEndian.Uint64(b[4:]))) }
func stampLatency(e laneEvent) time.Duration { return e.at.Sub(stampSent(e.data)) }

// laneDropper returns a dropLane hook that drops the given fraction of
// one lane's frames, deterministically.
func laneDropper(lane int, loss float64, seed uint64) func(int, []byte) bool {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, 99))
	return func(l int, _ []byte) bool {
		if l != lane {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		return r.Float64() < loss
	}
}

// percentile returns the p-th percentile (0..1) of ds, nearest rank.
func percentile(t testing.TB, ds []time.Duration, p float64) time.Duration {
	t.Helper()
	require.NotEmpty(t, ds)
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
