// Command loadgen causes TCP retransmissions at a tunable rate, for tests and
// benchmarks. It only talks to loopback: run it inside a network namespace
// whose nftables rules drop packets (see -help), e.g.
//
//	ip netns exec NS loadgen -streams 8 -syn-rate 200 -duration 30s
//
// Bulk streams to -listen retransmit when the namespace drops some of their
// segments at input; connections to -syn-port retransmit their SYN when the
// namespace drops SYNs to that port. Everything stops by itself after
// -duration.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

type summary struct {
	Streams       int     `json:"streams"`
	BytesSent     int64   `json:"bytes_sent"`
	SynAttempts   int64   `json:"syn_attempts"`
	DurationSec   float64 `json:"duration_s"`
	StreamErrors  int64   `json:"stream_errors"`
	ListenAddress string  `json:"listen"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9500", "address of the bulk-transfer sink (loopback only)")
	streams := flag.Int("streams", 8, "parallel bulk transfers")
	chunk := flag.Int("chunk", 64<<10, "bytes per write of a bulk transfer")
	pause := flag.Duration("pause", 0, "pause between writes of a stream (0: as fast as possible)")
	synPort := flag.Int("syn-port", 9501, "port whose SYNs the namespace drops")
	synRate := flag.Int("syn-rate", 0, "new connections per second to -syn-port (0: none)")
	synHold := flag.Duration("syn-hold", 2500*time.Millisecond, "how long each SYN connection is kept trying")
	duration := flag.Duration("duration", 10*time.Second, "how long to run (at most 10 minutes)")
	flag.Parse()

	if *duration > 10*time.Minute {
		fail(errors.New("-duration is limited to 10m"))
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		fail(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		fail(fmt.Errorf("-listen must be a loopback address, not %q", host))
	}

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fail(err)
	}
	go sink(ln)

	var sent, synAttempts, streamErrs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < *streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stream(ctx, *listen, *chunk, *pause, &sent); err != nil {
				streamErrs.Add(1)
			}
		}()
	}
	if *synRate > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			synFlood(ctx, host, *synPort, *synRate, int64(duration.Seconds()*float64(*synRate)), *synHold, &synAttempts)
		}()
	}
	wg.Wait()
	ln.Close()

	out := summary{
		Streams: *streams, BytesSent: sent.Load(), SynAttempts: synAttempts.Load(),
		DurationSec: time.Since(start).Seconds(), StreamErrors: streamErrs.Load(), ListenAddress: *listen,
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(2)
}

// sink reads every accepted connection to the end.
func sink(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}()
	}
}

// stream writes to addr until ctx ends.
func stream(ctx context.Context, addr string, chunk int, pause time.Duration, sent *atomic.Int64) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, chunk)
	for ctx.Err() == nil {
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Write(buf)
		sent.Add(int64(n))
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	return nil
}

// synFlood opens rate connections per second to a port whose SYNs are
// dropped, limit in all; each is abandoned after hold.
func synFlood(ctx context.Context, host string, port, rate int, limit int64, hold time.Duration, attempts *atomic.Int64) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	addr := net.JoinHostPort(host, fmt.Sprint(port))
	// Ticks missed while the machine is busy are caught up, so that the
	// rate holds under load (as long as connections can be opened), but
	// never beyond the run's end or its number of connections: a machine
	// too slow for the rate (a TCG guest at thousands a second) gets
	// fewer, not a run that catches up for minutes.
	start := time.Now()
	var opened int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := min(int64(time.Since(start).Seconds()*float64(rate)), limit)
		for ; opened < due && ctx.Err() == nil; opened++ {
			attempts.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(context.Background(), hold)
				defer cancel()
				var d net.Dialer
				if c, err := d.DialContext(cctx, "tcp", addr); err == nil {
					c.Close()
				}
			}()
		}
	}
}
