package bpf

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// latency is how long an event took from the kernel to the reader.
func latency(e Event) time.Duration {
	return time.Duration(e.Received - e.Timestamp)
}

// withMaxDelay is the defaults with --max-delay d.
func withMaxDelay(d time.Duration) Options {
	f := DefaultFilters
	f.MaxDelayUs = uint32(d / time.Microsecond)
	return withFilters(f)
}

// A retransmission on a quiet host wakes the reader at once, however long
// --max-delay is: the SYN retransmissions of one connection come a second
// and more apart.
func TestQuietRetransmissionDeliveredAtOnce(t *testing.T) {
	const maxDelay = 800 * time.Millisecond
	ns := NewNetns(t)
	ns.Nft(t, fmt.Sprintf(dropSYN, 9030))
	g := LoadGadget(t, withMaxDelay(maxDelay))

	connectRaw(t, ns, netip.AddrPortFrom(lo4, 9030), unix.AF_INET, 0)
	syn := filter(g.Collect(t, 8*time.Second, atLeast(2, to(9030))), to(9030))
	require.GreaterOrEqual(t, len(syn), 2, "two SYN retransmissions (after 1 s and 3 s)")
	for _, e := range syn[:2] {
		t.Logf("%s: delivered after %s", e, latency(e))
		// A wake-up left to the timer would take 800 ms.
		assert.Less(t, latency(e), maxDelay/4, "a lone event is not held back: %s", e)
	}
}

// The events of a burst share wake-ups, and the last one reaches the reader
// within --max-delay: nothing stays in the ring buffer after a burst ends.
func TestBurstEndDeliveredWithinMaxDelay(t *testing.T) {
	const maxDelay = 300 * time.Millisecond
	// Scheduling of the reader's goroutine, above the bound.
	const slack = 200 * time.Millisecond
	ns := NewNetns(t)
	ns.Nft(t, fmt.Sprintf(dropData, 9031, 10))
	g := LoadGadget(t, withMaxDelay(maxDelay))
	ln := ns.Listen(t, "tcp4", "127.0.0.1:9031")
	Drain(ln)

	// Two seconds of a lossy transfer, then nothing: the connection is
	// closed and the namespace's drops stop with the listener.
	data := func(e Event) bool { return e.Dst.Port() == 9031 && e.Type == "RETRANS" }
	writer := bulk(t, ns, "127.0.0.1:9031", 64<<10, 0, 2*time.Second, nil)
	require.NoError(t, <-writer)
	ns.Nft(t, "flush ruleset")
	// Retransmissions in flight when the writer stops end within a few RTOs.
	evs := filter(g.Collect(t, 5*time.Second, nil), data)
	require.GreaterOrEqual(t, len(evs), 20, "retransmissions of a lossy bulk transfer")

	var worst Event
	for _, e := range evs {
		if latency(e) > latency(worst) {
			worst = e
		}
	}
	last := evs[len(evs)-1]
	t.Logf("%d events; the last %s delivered after %s; the slowest after %s", len(evs), last, latency(last), latency(worst))
	assert.LessOrEqual(t, latency(last), maxDelay+slack, "the last event of the burst: %s", last)
	assert.LessOrEqual(t, latency(worst), maxDelay+slack, "every event of the burst: %s", worst)
	// The events that followed a wake-up waited for the next one instead
	// of waking the reader each.
	assert.Greater(t, latency(worst), maxDelay/10, "wake-ups are batched")
}
