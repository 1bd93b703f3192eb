package bpf

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"trace_tcpretrans/test/gadgettest"
)

func TestMain(m *testing.M) {
	// The tests also create network namespaces, which needs root too.
	if err := gadgettest.NeedRoot("'sudo make test'"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The failed-retransmission test reads the tracepoint's format.
	if _, err := os.Stat("/sys/kernel/tracing/events"); err != nil {
		if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
			fmt.Fprintf(os.Stderr, "mounting tracefs: %v\n", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}
