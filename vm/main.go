// Command vm runs a shell command inside a Debian distribution kernel booted
// under QEMU (TCG), with this machine's root filesystem shared read-only over
// 9p and a tmpfs overlay on top. It streams the guest's console and exits
// with the command's status.
//
//	vm -kernel 6.1 [-share DIR]... [-workdir DIR] [-tap IFACE] -- 'command'
//	vm -kernel 6.1 -print suite|mirror
//	vm -kernel 6.1 -headers
//
// Kernels come from the Debian mirror of this machine's apt sources
// (bullseye 5.10, bookworm 6.1, trixie 6.12, trixie-backports 7.3; see
// package debian) and are cached. -headers downloads (once) the headers of
// the kernel -kernel boots, for BCC_KERNEL_SOURCE, merged into one tree,
// and prints that directory. A guest whose CPUs soft-lock (seen now and then under
// multi-threaded TCG), or whose kernel oopses under multi-threaded TCG (an
// int3 of its own code patching, a double fault in the allocator: seen in
// the Kubernetes node's guest) or stops under it without a word, is detected
// and booted again, twice at most.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"trace_tcpretrans/vm/debian"
)

// exitRunner is the status for failures of the runner itself.
const exitRunner = 125

// marker precedes the command's exit status on the guest console.
const marker = "VMRUNNER-EXIT-STATUS="

type shares []string

func (s *shares) String() string     { return strings.Join(*s, ",") }
func (s *shares) Set(v string) error { *s = append(*s, v); return nil }

type options struct {
	kernel  string
	mem     int
	cpus    int
	tcg     string
	timeout time.Duration
	cache   string
	shares  shares
	workdir string
	command string
	print   string
	headers bool
	tap     string
}

func main() {
	var o options
	flag.StringVar(&o.kernel, "kernel", "6.1", "Debian kernel: "+strings.Join(kernelNames(), ", "))
	flag.IntVar(&o.mem, "mem", 3072, "guest memory in MiB")
	flag.IntVar(&o.cpus, "cpus", 2, "guest CPUs")
	// Multi-threaded TCG was seen to hang guests inside ig (both CPUs
	// soft-locked while it attached its programs); one thread for all
	// guest CPUs has not been seen to.
	flag.StringVar(&o.tcg, "tcg-threads", "single", "QEMU TCG threading: single or multi")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "time limit for one boot and the command")
	flag.StringVar(&o.cache, "cache", "/var/cache/trace_tcpretrans/vm", "where kernels and initramfs images are kept")
	flag.Var(&o.shares, "share", "host directory shared read-write at the same path (repeatable)")
	flag.StringVar(&o.tap, "tap", "", "a host TAP interface (made by the caller) to give the guest as its network card (virtio-net); none by default")
	flag.StringVar(&o.workdir, "workdir", "/", "working directory of the command in the guest")
	flag.StringVar(&o.print, "print", "", "print and exit: mirror (Debian's archive, from apt's sources) or suite (the Debian suite of -kernel)")
	flag.BoolVar(&o.headers, "headers", false, "print and exit: the directory of the headers of -kernel's kernel, Debian's -common and -<arch> trees merged (downloaded and cached the first time)")
	flag.Parse()
	if o.print != "" && o.headers {
		fmt.Fprintln(os.Stderr, "vm: -print and -headers do not go together")
		os.Exit(exitRunner)
	}
	if o.print != "" {
		os.Exit(printInfo(o))
	}
	if o.headers {
		dir, err := headers(o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vm:", err)
			os.Exit(exitRunner)
		}
		fmt.Println(dir)
		os.Exit(0)
	}
	o.command = strings.Join(flag.Args(), " ")
	if o.command == "" {
		fmt.Fprintln(os.Stderr, "vm: no command; usage: vm -kernel 6.1 -- 'command'")
		os.Exit(exitRunner)
	}
	status, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vm:", err)
		os.Exit(exitRunner)
	}
	os.Exit(status)
}

// printInfo answers -print for scripts (bench/deps.sh).
func printInfo(o options) int {
	switch o.print {
	case "mirror":
		m, err := debian.Mirror()
		if err != nil {
			fmt.Fprintln(os.Stderr, "vm:", err)
			return exitRunner
		}
		fmt.Println(m)
	case "suite":
		k, ok := kernels[o.kernel]
		if !ok {
			fmt.Fprintf(os.Stderr, "vm: unknown -kernel %q: use one of %s\n", o.kernel, strings.Join(kernelNames(), ", "))
			return exitRunner
		}
		fmt.Println(k.suite)
	default:
		fmt.Fprintf(os.Stderr, "vm: unknown -print %q: use mirror or suite\n", o.print)
		return exitRunner
	}
	return 0
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "vm: "+format+"\n", args...)
}

func run(o options) (int, error) {
	if os.Geteuid() != 0 {
		return 0, errors.New("must run as root (9p passthrough of the root filesystem)")
	}
	if o.tcg != "single" && o.tcg != "multi" {
		return 0, fmt.Errorf("unknown -tcg-threads %q: use single or multi", o.tcg)
	}
	k, ok := kernels[o.kernel]
	if !ok {
		return 0, fmt.Errorf("unknown -kernel %q: use one of %s", o.kernel, strings.Join(kernelNames(), ", "))
	}
	for _, tool := range []string{"qemu-system-x86_64", "apt-get", "dpkg", "depmod", "cpio", "gzip", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			return 0, fmt.Errorf("%s not found: run 'make deps'", tool)
		}
	}
	img, err := prepareKernel(o.cache, k)
	if err != nil {
		return 0, err
	}
	for attempt := 1; ; attempt++ {
		status, err := boot(o, img)
		if isTCGFault(err) && attempt < 3 {
			logf("%v detected, booting again", err)
			continue
		}
		if isTCGFault(err) {
			return 0, fmt.Errorf("three times (QEMU TCG): %w", err)
		}
		return status, err
	}
}

// Faults of the emulation rather than of the command: the guest is booted
// again when one of them is seen, twice at most.
var (
	errLockup = errors.New("guest soft lockup")
	errOops   = errors.New("guest kernel Oops under multi-threaded TCG")
	// A guest reset (a triple fault) ends QEMU (-no-reboot) without a
	// word on the console.
	errSilentStop = errors.New("guest stopped without a word (no status, no kernel panic) under multi-threaded TCG")
)

// errPanic is a kernel panic before the command's status.
var errPanic = errors.New("guest kernel panic")

func isTCGFault(err error) bool {
	return errors.Is(err, errLockup) || errors.Is(err, errOops) || errors.Is(err, errSilentStop)
}

// boot starts QEMU once and waits for the command's status.
func boot(o options, img *kernelImage) (int, error) {
	runDir, err := os.MkdirTemp("", "vmrun.")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(runDir)
	if err := writeStage2(runDir, o, img); err != nil {
		return 0, err
	}

	args := []string{
		"-accel", "tcg,thread=" + o.tcg, "-cpu", "max",
		"-m", strconv.Itoa(o.mem), "-smp", strconv.Itoa(o.cpus),
		"-kernel", img.vmlinuz, "-initrd", img.initrd,
		// Under TCG a guest CPU can spend tens of seconds in the verifier
		// for one of ig's large programs; watchdog_thresh=60 reports a
		// soft lockup only after 120 s, so that what is reported is a hang.
		"-append", "console=ttyS0 loglevel=4 panic=-1 rdinit=/init watchdog_thresh=60",
		"-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-virtfs", "local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap",
		"-virtfs", "local,path=" + img.modules + ",mount_tag=modules,security_model=passthrough,readonly=on,multidevs=remap",
		"-virtfs", "local,path=" + runDir + ",mount_tag=vmrun,security_model=passthrough,multidevs=remap",
	}
	if o.tap != "" {
		// The guest's only link goes to the host: what it reaches is what
		// the caller serves on the TAP's side.
		args = append(args, "-netdev", "tap,id=net0,ifname="+o.tap+",script=no,downscript=no",
			"-device", "virtio-net-pci,netdev=net0,romfile=")
	}
	for i, s := range o.shares {
		args = append(args, "-virtfs", fmt.Sprintf("local,path=%s,mount_tag=share%d,security_model=passthrough,multidevs=remap", s, i))
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.Stdin = nil
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	cmd.Stderr = os.Stderr
	logf("booting Linux %s under QEMU/TCG", img.version)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	status, scanErr := scanConsole(out, os.Stdout, o.tcg == "multi", cancel)
	waitErr := cmd.Wait()
	switch {
	case isTCGFault(scanErr):
		return 0, scanErr
	case status >= 0:
		logf("guest finished in %s with status %d", time.Since(start).Round(time.Second), status)
		return status, nil
	case ctx.Err() != nil:
		return 0, fmt.Errorf("timed out after %s without the command's status (raise -timeout?)", o.timeout)
	case scanErr != nil:
		return 0, fmt.Errorf("guest stopped without the command's status: %w", scanErr)
	case waitErr == nil && o.tcg == "multi":
		return 0, errSilentStop
	default:
		return 0, fmt.Errorf("guest stopped without the command's status: %v", waitErr)
	}
}

// scanConsole copies the console to w, returns the command's status (or -1)
// and errLockup when the guest reports a soft lockup, errOops when its
// kernel oopses under multi-threaded TCG (multi), errPanic (with the panic's
// reason) when its kernel panics before the status.
func scanConsole(r io.Reader, w io.Writer, multi bool, stop func()) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	status := -1
	panicked := ""
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if s, ok := parseStatus(line); ok {
			status = s
			continue
		}
		fmt.Fprintln(w, line)
		if i := strings.Index(line, "Kernel panic - "); i >= 0 && status < 0 && panicked == "" {
			panicked = line[i:]
		}
		if strings.Contains(line, "watchdog: BUG: soft lockup") {
			stop()
			return status, errLockup
		}
		if multi && strings.Contains(line, "] Oops: ") {
			stop()
			return status, errOops
		}
	}
	if err := sc.Err(); err != nil {
		return status, err
	}
	if panicked != "" && status < 0 {
		return status, fmt.Errorf("%w: %s", errPanic, panicked)
	}
	return status, nil
}

// parseStatus recognises the marker line printed by the guest.
func parseStatus(line string) (int, bool) {
	i := strings.Index(line, marker)
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[i+len(marker):]))
	if err != nil {
		return 0, false
	}
	return n, true
}

// writeStage2 writes the script the guest runs inside its new root.
func writeStage2(dir string, o options, img *kernelImage) error {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	b.WriteString(stage2Prologue)
	// Shares are cached too (bin/ig is run from one, once per test): what
	// the guest writes there reaches the host by the sync before power-off.
	for i, s := range o.shares {
		fmt.Fprintf(&b, "mkdir -p %q && mount -t 9p -o trans=virtio,version=9p2000.L,cache=loose,msize=262144 share%d %q\n", s, i, s)
	}
	fmt.Fprintf(&b, "cd %q || exit 1\n", o.workdir)
	b.WriteString("/bin/sh /vmrun/cmd.sh\n")
	b.WriteString(stage2Epilogue)
	if err := os.WriteFile(filepath.Join(dir, "stage2.sh"), []byte(b.String()), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "cmd.sh"), []byte(o.command+"\n"), 0o644)
}

// stage2Epilogue reports the command's status ($?) and powers off. The
// status goes out twice: on the tty, after the command's output, which is
// then drained (stty sets the same settings again with TCSETSW, which waits
// for the output to be sent) so that the power-off does not cut it off; and
// through the kernel's log (/dev/kmsg, level 2), whose lines reach the
// console whole, where a kernel message can split a tty line. The script is
// PID 1: it must not exit (the kernel would panic), and once the power-off
// has begun it cannot start a program from the 9p root, so it waits with a
// builtin: a read from a FIFO (in tmpfs) that nothing writes.
var stage2Epilogue = fmt.Sprintf(`status=$?
echo "%[1]s$status"
stty "$(stty -g)" 2>/dev/null || sleep 1
echo "<2>%[1]s$status" >/dev/kmsg
sync
mkfifo /run/vm-poweroff
echo o > /proc/sysrq-trigger
read _ <>/run/vm-poweroff
`, marker)

// stage2Prologue prepares the guest's root: file systems the tools expect.
const stage2Prologue = `export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
mount -t tmpfs -o size=75% tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
# The links udev would make; runc and crun re-execute themselves with
# execveat(fd), which needs /dev/fd on older kernels (seen on 5.10).
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
for n in 0:stdin 1:stdout 2:stderr; do [ -e /dev/${n#*:} ] || ln -s /proc/self/fd/${n%%:*} /dev/${n#*:}; done
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /var/lib/docker /var/run
ip link set lo up
echo 1 > /proc/sys/kernel/sysrq
`
