package fec_test

import (
	"fmt"
	"time"

	"github.com/uxp-go/uxp/fec"
)

// Example sends three packets through an RS(2,1) encoder, loses one data
// shard on the way, and recovers it.
func Example() {
	enc, err := fec.NewEncoder(2, 1, 1400)
	if err != nil {
		fmt.Println(err)
		return
	}
	dec, err := fec.NewDecoder(32, time.Second, 1400)
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Now()

	var wire [][]byte
	emit := func(shard []byte) {
		// The shard is only valid during the call: seal it into a new
		// buffer, here just a copy.
		wire = append(wire, append([]byte(nil), shard...))
	}
	for _, pkt := range []string{"hello", "fec", "world"} {
		if err := enc.Encode([]byte(pkt), now, emit); err != nil {
			fmt.Println(err)
			return
		}
	}
	if !enc.Deadline().IsZero() {
		enc.Flush(now, emit) // "world" waits alone in a partial group
	}

	wire = append(wire[:0], wire[1:]...) // lose "hello"
	for _, shard := range wire {
		err := dec.Decode(shard, now, func(pkt []byte, recovered bool) {
			fmt.Printf("%s recovered=%v\n", pkt, recovered)
		})
		if err != nil {
			fmt.Println(err)
		}
	}
	fmt.Printf("%+v\n", dec.Stats())
	// Output:
	// fec recovered=false
	// hello recovered=true
	// world recovered=false
	// {DataShards:2 ParityShards:2 Recovered:1 Expired:0 Malformed:0 Duplicates:0 OverBudget:0 Throttled:0 CodecBuilds:1 Late:0}
}
