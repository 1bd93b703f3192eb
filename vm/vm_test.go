package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseStatus(t *testing.T) {
	for line, want := range map[string]int{"VMRUNNER-EXIT-STATUS=3": 3, "\x1b[0mVMRUNNER-EXIT-STATUS=0\r": 0} {
		got, ok := parseStatus(strings.TrimRight(line, "\r"))
		if !ok || got != want {
			t.Errorf("parseStatus(%q) = %d, %v; want %d", line, got, ok, want)
		}
	}
	if _, ok := parseStatus("echo \"VMRUNNER-EXIT-STATUS=$?\""); ok {
		t.Errorf("the script's own text is not a status")
	}
}

func TestScanConsoleStatusAndLockup(t *testing.T) {
	var out bytes.Buffer
	st, err := scanConsole(strings.NewReader("hello\nVMRUNNER-EXIT-STATUS=7\n"), &out, func() {})
	if err != nil || st != 7 || out.String() != "hello\n" {
		t.Fatalf("got %d %v %q", st, err, out.String())
	}
	stopped := false
	_, err = scanConsole(strings.NewReader("[ 12.3] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [ig:300]\nmore\n"), &out, func() { stopped = true })
	if !errors.Is(err, errLockup) || !stopped {
		t.Fatalf("lockup not detected: %v %v", err, stopped)
	}
}

func TestModuleOrder(t *testing.T) {
	dep := `kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz
kernel/net/9p/9pnet.ko.xz:
kernel/fs/netfs/netfs.ko.xz:
kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz
kernel/drivers/virtio/virtio_ring.ko.xz:
`
	got := moduleOrder(dep, []string{"9pnet_virtio", "9p", "fscache"})
	want := []string{
		"kernel/drivers/virtio/virtio_ring.ko.xz", "kernel/net/9p/9pnet.ko.xz", "kernel/net/9p/9pnet_virtio.ko.xz",
		"kernel/fs/netfs/netfs.ko.xz", "kernel/fs/9p/9p.ko.xz",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}
