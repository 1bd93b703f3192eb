package bpf

import (
	"fmt"
	"os"
	"testing"

	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the BPF tests load programs into the kernel and create network namespaces: run them as root ('sudo make test')")
		os.Exit(1)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		fmt.Fprintf(os.Stderr, "raising RLIMIT_MEMLOCK: %v\n", err)
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
