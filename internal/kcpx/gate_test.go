package kcpx

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestNowAdvances checks that Now follows kcp-go's millisecond clock, on
// the linked path (gate passed) or through the public API.
func TestNowAdvances(t *testing.T) {
	now := Now()
	time.Sleep(5 * time.Millisecond)
	require.GreaterOrEqual(t, int32(Now()-now), int32(4))
}
