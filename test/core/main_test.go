package core

import (
	"fmt"
	"os"
	"testing"

	"github.com/cilium/ebpf/rlimit"
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the CO-RE test loads programs into the kernel: run it as root ('sudo make test-core')")
		os.Exit(1)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		fmt.Fprintf(os.Stderr, "raising RLIMIT_MEMLOCK: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
