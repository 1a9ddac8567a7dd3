package netsim

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestImpairmentValidate(t *testing.T) {
	tests := []struct {
		name      string
		imp       Impairment
		wantField string // empty: valid
	}{
		{name: "zero", imp: Impairment{}},
		{name: "all set", imp: Impairment{Loss: 1, Duplicate: 0.5, Reorder: 0.1, ReorderDelay: time.Millisecond, Delay: time.Second, Jitter: time.Millisecond, Blackhole: true}},
		{name: "negative loss", imp: Impairment{Loss: -0.1}, wantField: "Loss"},
		{name: "loss over one", imp: Impairment{Loss: 1.01}, wantField: "Loss"},
		{name: "NaN loss", imp: Impairment{Loss: math.NaN()}, wantField: "Loss"},
		{name: "duplicate over one", imp: Impairment{Duplicate: 2}, wantField: "Duplicate"},
		{name: "negative reorder", imp: Impairment{Reorder: -1}, wantField: "Reorder"},
		{name: "negative reorder delay", imp: Impairment{ReorderDelay: -time.Millisecond}, wantField: "ReorderDelay"},
		{name: "negative delay", imp: Impairment{Delay: -1}, wantField: "Delay"},
		{name: "negative jitter", imp: Impairment{Jitter: -1}, wantField: "Jitter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.imp.Validate()
			if tt.wantField == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidImpairment)
			require.Contains(t, err.Error(), tt.wantField+" =")
		})
	}
}

func TestSettersPanicOnInvalidImpairment(t *testing.T) {
	bad := Impairment{Loss: 2}
	n := NewNetwork(1)
	defer n.Close()
	require.Panics(t, func() { n.SetDefault(bad) })
	require.Panics(t, func() { Wrap(nil, bad, 1) })
}

func TestDelayQueueOrder(t *testing.T) {
	var q delayQueue[int]
	base := time.Unix(100, 0)
	// Equal due times must come out in insertion order.
	dues := []int{5, 1, 3, 1, 9, 0, 3, 7, 1}
	for i, d := range dues {
		q.push(base.Add(time.Duration(d)), i)
	}
	_, ok := q.popDue(base.Add(-1))
	require.False(t, ok, "nothing is due before the earliest time")

	var got []int
	for {
		v, ok := q.popDue(base.Add(100))
		if !ok {
			break
		}
		got = append(got, v)
	}
	require.Equal(t, []int{5, 1, 3, 8, 2, 6, 0, 7, 4}, got)
	require.Zero(t, q.len())
}

func TestImpairmentMTU(t *testing.T) {
	s := newSource(1)
	imp := Impairment{MTU: 1280}
	if v := s.decide(&imp, make([]byte, 1280)); v.copies != 1 {
		t.Fatalf("a 1280-byte packet on a 1280-byte link: %d copies, want 1", v.copies)
	}
	if v := s.decide(&imp, make([]byte, 1281)); v.copies != 0 {
		t.Fatalf("a 1281-byte packet on a 1280-byte link: %d copies, want 0", v.copies)
	}
	if err := (Impairment{MTU: -1}).Validate(); err == nil {
		t.Fatal("negative MTU validated")
	}
}
