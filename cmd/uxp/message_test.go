package main

import (
	"errors"
	"testing"
	"time"
)

func TestMessageRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		client uint32
		seq    uint32
	}{
		{name: "mixed first", size: 0, client: 0, seq: 0},
		{name: "mixed later", size: 0, client: 31, seq: 199},
		{name: "one byte", size: 1, client: 3, seq: 7},
		{name: "fragmented", size: 5000, client: 1, seq: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := payloadGen{seed: 42, size: tt.size}
			sent := 1234567 * time.Nanosecond
			m := g.buildMessage(nil, tt.client, tt.seq, sent)
			h, payload, err := parseMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			if h.Client() != tt.client || h.Seq() != tt.seq || h.Sent() != sent {
				t.Fatalf("header = (%d, %d, %v), want (%d, %d, %v)", h.Client(), h.Seq(), h.Sent(), tt.client, tt.seq, sent)
			}
			if want := g.payload(nil, tt.client, tt.seq); string(payload) != string(want) {
				t.Fatal("payload differs from the regenerated one")
			}
			if tt.size == 0 && (len(payload) < minMixedPayload || len(payload) > maxMixedPayload) {
				t.Fatalf("mixed payload of %d bytes is outside [%d, %d]", len(payload), minMixedPayload, maxMixedPayload)
			}
			if tt.size > 0 && len(payload) != tt.size {
				t.Fatalf("payload is %d bytes, want %d", len(payload), tt.size)
			}
			// Every single-bit flip, header or payload, is caught.
			for i := range m {
				bad := append([]byte(nil), m...)
				bad[i] ^= 0x10
				if _, _, err := parseMessage(bad); !errors.Is(err, errBadChecksum) {
					t.Fatalf("flip at byte %d: err = %v, want errBadChecksum", i, err)
				}
			}
		})
	}
}

func TestParseMessageShort(t *testing.T) {
	for n := range msgHeaderSize {
		if _, _, err := parseMessage(make([]byte, n)); !errors.Is(err, errShortMessage) {
			t.Fatalf("%d bytes: err = %v, want errShortMessage", n, err)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	g := payloadGen{seed: 1}
	f.Add(g.buildMessage(nil, 0, 0, 0))
	f.Add(g.buildMessage(nil, 5, 9, time.Second))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, m []byte) {
		h, payload, err := parseMessage(m)
		if err != nil {
			return
		}
		// Keep going after the length checks: the accessors must not panic
		// on any message that verified.
		if len(payload) != len(m)-msgHeaderSize {
			t.Fatalf("payload length %d from a %d-byte message", len(payload), len(m))
		}
		_ = h.Client() + h.Seq()
	})
}
