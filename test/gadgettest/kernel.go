package gadgettest

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf/rlimit"

	"trace_tcpretrans/go/contract"
)

// KallsymsHas tells whether /proc/kallsyms lists symbol, as the wasm
// operator asks ig (api.KallsymsSymbolExists).
func KallsymsHas(symbol string) (bool, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address type name [module]
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == symbol {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("reading /proc/kallsyms: %w", err)
	}
	return false, nil
}

// HasKprobes tells whether the kernel was built with CONFIG_KPROBES: the
// same symbol the wasm operator checks.
func HasKprobes() (bool, error) {
	return KallsymsHas(contract.KprobeSymbol)
}

// NeedRoot is the start of a TestMain whose tests load BPF programs: it
// checks for root, naming what to run instead (how), and lifts
// RLIMIT_MEMLOCK for kernels that still charge BPF memory to it.
func NeedRoot(how string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("these tests load BPF programs into the kernel: run them as root (%s)", how)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("raising RLIMIT_MEMLOCK: %w", err)
	}
	return nil
}
