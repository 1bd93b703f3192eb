package core

import (
	"fmt"
	"os"
	"testing"

	"trace_tcpretrans/test/gadgettest"
)

func TestMain(m *testing.M) {
	if err := gadgettest.NeedRoot("'sudo make test-core'"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
