// Package bpf loads the gadget's BPF object (the very file that goes into the
// image) into the running kernel with cilium/ebpf, causes real TCP
// retransmissions in a private network namespace and checks the events.
// Loading, decoding and namespaces are gadgettest's; this file adapts them
// to *testing.T.
package bpf

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"trace_tcpretrans/go/contract"
	"trace_tcpretrans/test/gadgettest"
)

var objectPath = flag.String("object", "../../.build/amd64.bpf.o", "BPF object built by 'make build'")

type (
	Event   = gadgettest.Event
	Filters = contract.Config
	Options = gadgettest.Options
)

// DefaultFilters are the parameters' defaults.
var DefaultFilters = contract.DefaultConfig()

// Gadget is the loaded and attached object with a reader of its events.
type Gadget struct {
	*gadgettest.Object
	events chan Event
	reader *gadgettest.Reader
	errs   chan error
}

// LoadGadget loads and attaches the object; everything is released when the
// test ends.
func LoadGadget(t *testing.T, opts Options) *Gadget {
	t.Helper()
	o, err := gadgettest.Load(*objectPath, opts)
	require.NoError(t, err)
	t.Cleanup(o.Close)
	dec, err := gadgettest.NewDecoder(o.Spec)
	require.NoError(t, err)

	g := &Gadget{Object: o, events: make(chan Event, 4096), errs: make(chan error, 1)}
	// A reader like ig's: it sleeps in epoll until the kernel wakes it.
	g.reader, err = gadgettest.Read(o.Coll.Maps[contract.EventsMap], gadgettest.ReadOptions{}, func(raw []byte) {
		received := boottime()
		ev, err := dec.Decode(raw)
		ev.Received = received
		if err != nil {
			select {
			case g.errs <- err:
			default:
			}
			return
		}
		g.events <- ev
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, g.reader.Close(), "reading the ring buffer") })
	return g
}

// WriteFilters writes the parameters' map entry, marked ready, as the wasm
// operator does when the gadget starts.
func (g *Gadget) WriteFilters(t *testing.T, f Filters) {
	t.Helper()
	require.NoError(t, g.WriteConfig(f))
}

// Collect gathers events until done reports true for the events so far or
// the timeout passes; it returns what it gathered either way and fails the
// test on a record it cannot decode or a reader error.
func (g *Gadget) Collect(t *testing.T, timeout time.Duration, done func([]Event) bool) []Event {
	t.Helper()
	var got []Event
	deadline := time.After(timeout)
	for {
		if done != nil && done(got) {
			return got
		}
		select {
		case ev := <-g.events:
			got = append(got, ev)
		case err := <-g.errs:
			t.Fatalf("decoding a record: %v", err)
		case <-g.reader.Done():
			t.Fatalf("the ring buffer reader stopped: %v", g.reader.Err())
		case <-deadline:
			return got
		}
	}
}

// boottime reads CLOCK_BOOTTIME, the clock of the events' timestamps.
func boottime() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		panic(err) // cannot fail on Linux
	}
	return uint64(ts.Nano())
}
