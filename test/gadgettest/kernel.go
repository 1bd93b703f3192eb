package gadgettest

import (
	"bufio"
	"fmt"
	"os"
	"strings"

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
