package gadgettest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"
	"github.com/cilium/ebpf/ringbuf"
)

// Reader reads a ring buffer or a perf buffer in the background and hands
// each record to a function.
type Reader struct {
	close func() error
	done  chan struct{}
	mu    sync.Mutex
	err   error
}

// ReadOptions tune a Reader.
type ReadOptions struct {
	// Batch, when not zero, makes a ring-buffer reader poll at this
	// interval instead of sleeping in epoll, so that the kernel rarely has
	// a reader to wake (it wakes one only when the reader has caught up).
	Batch time.Duration
	// Lost receives the samples a perf buffer reports lost.
	Lost func(n uint64)
}

// Read starts reading m (BPF_MAP_TYPE_RINGBUF or PERF_EVENT_ARRAY); record
// is called from the reading goroutine for every record. Close stops it.
func Read(m *ebpf.Map, opts ReadOptions, record func(raw []byte)) (*Reader, error) {
	r := &Reader{done: make(chan struct{})}
	switch m.Type() {
	case ebpf.RingBuf:
		rd, err := ringbuf.NewReader(m)
		if err != nil {
			return nil, fmt.Errorf("ring buffer: %w", err)
		}
		r.close = rd.Close
		go r.run(func() error { return readRing(rd, opts.Batch, record) })
	case ebpf.PerfEventArray:
		rd, err := perf.NewReader(m, 256*os.Getpagesize())
		if err != nil {
			return nil, fmt.Errorf("perf buffer: %w", err)
		}
		r.close = rd.Close
		go r.run(func() error { return readPerf(rd, opts.Lost, record) })
	default:
		return nil, fmt.Errorf("map %v is neither a ring buffer nor a perf buffer", m)
	}
	return r, nil
}

func (r *Reader) run(loop func() error) {
	err := loop()
	if errors.Is(err, os.ErrClosed) {
		err = nil
	}
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
	close(r.done)
}

// Done is closed when reading has stopped, by Close or by an error.
func (r *Reader) Done() <-chan struct{} { return r.done }

// Err returns the error that stopped reading, if any.
func (r *Reader) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close stops reading and returns the error that stopped it before, if any.
func (r *Reader) Close() error {
	cerr := r.close()
	<-r.done
	if err := r.Err(); err != nil {
		return err
	}
	return cerr
}

func readRing(rd *ringbuf.Reader, batch time.Duration, record func([]byte)) error {
	var rec ringbuf.Record
	for {
		if batch > 0 {
			time.Sleep(batch)
			rd.SetDeadline(time.Now())
		}
		err := rd.ReadInto(&rec)
		if batch > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return err
		}
		record(rec.RawSample)
		// Empty the buffer before sleeping again.
		for batch > 0 {
			if err := rd.ReadInto(&rec); err != nil {
				break
			}
			record(rec.RawSample)
		}
	}
}

func readPerf(rd *perf.Reader, lost func(uint64), record func([]byte)) error {
	var rec perf.Record
	for {
		if err := rd.ReadInto(&rec); err != nil {
			return err
		}
		if rec.LostSamples > 0 {
			if lost != nil {
				lost(rec.LostSamples)
			}
			continue
		}
		record(rec.RawSample)
	}
}
