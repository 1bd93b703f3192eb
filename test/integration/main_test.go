//go:build integration

// Package integration runs the real ig binary with the gadget image against
// real containers. It needs a kernel on which ig runs fully (kprobes, PID 1
// visible) plus dockerd; `make test` runs it inside Debian kernels under
// QEMU (vm/) for each kernel of the matrix.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	repo  = flag.String("repo", "../..", "repository root (bin/ig, scripts/)")
	image = flag.String("image", "", "the gadget image in ig's local store (make test-integration passes $(IMAGE))")
)

// webIP is the address of the web server container every test fetches from.
var webIP string

func TestMain(m *testing.M) {
	flag.Parse()
	if *image == "" {
		fmt.Fprintln(os.Stderr, "-image: the gadget image to test is required (make test-integration passes it)")
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "integration tests run ig and dockerd: run them as root")
		os.Exit(1)
	}
	abs, err := filepath.Abs(*repo)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*repo = abs
	work, err := os.MkdirTemp("", "it.")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := exec.Command("bash", "-c", guide("guide_up "+work)).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "setting up docker: %v\n%s", err, out)
		os.Exit(1)
	}
	lines := strings.Fields(strings.TrimSpace(string(out)))
	webIP = lines[len(lines)-1]
	code := m.Run()
	_ = exec.Command("bash", "-c", "docker rm -f $(docker ps -aq) >/dev/null 2>&1").Run()
	os.Exit(code)
}

// IG is a running `ig run` of the gadget.
type IG struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	mu     sync.Mutex
	lines  []string
	// arrived[i] is when lines[i] was read from ig's output.
	arrived []time.Time
	done    chan struct{}
}

// StartIG runs ig with the gadget image under test (local, unsigned) and
// waits until its programs are attached.
func StartIG(t *testing.T, args ...string) *IG {
	t.Helper()
	return StartIGRun(t, append([]string{*image, "--verify-image=false"}, args...)...)
}

// StartIGRun runs `ig run ARGS...` (the image first) and waits until the
// gadget's programs are attached.
func StartIGRun(t *testing.T, args ...string) *IG {
	t.Helper()
	cmd := exec.Command(igBin(), append([]string{"run"}, args...)...)
	g := startIG(t, cmd)

	// Under QEMU/TCG ig takes 30 to 140 s to start (the first start of a
	// guest pages ig in over 9p; every start loads the kernel's BTF and
	// compiles the wasm operator): a bound, not a speed check.
	deadline := time.Now().Add(240 * time.Second)
	for !attached() {
		select {
		case <-g.done:
			t.Fatalf("ig exited before attaching: %v\n%s", cmd.ProcessState, g.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ig did not attach within 240 s\n%s", g.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return g
}

// startIG starts cmd, an ig, collecting its output lines; it is stopped
// when the test ends.
func startIG(t *testing.T, cmd *exec.Cmd) *IG {
	t.Helper()
	g := &IG{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	pipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = g.stderr
	require.NoError(t, cmd.Start())
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			now := time.Now()
			g.mu.Lock()
			g.lines = append(g.lines, sc.Text())
			g.arrived = append(g.arrived, now)
			g.mu.Unlock()
		}
		_ = cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() { g.Stop(t) })
	return g
}

// attached is the guide fixture's check (scripts/guide.sh).
func attached() bool {
	return exec.Command("bash", "-c", guide("gadget_attached")).Run() == nil
}

// igBin is the ig binary under test.
func igBin() string { return filepath.Join(*repo, "bin/ig") }

// guide prefixes a shell command with the guide fixture's functions.
func guide(command string) string {
	return ". " + filepath.Join(*repo, "scripts/guide.sh") + " && " + command
}

// Stop interrupts ig and waits for it to exit.
func (g *IG) Stop(t *testing.T) {
	t.Helper()
	select {
	case <-g.done:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-g.done:
	case <-time.After(30 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
		t.Errorf("ig did not stop within 30 s of SIGINT")
	}
}

// igFails runs ig with args, which must fail within bound: it returns the
// combined output.
func igFails(t *testing.T, bound time.Duration, args ...string) string {
	t.Helper()
	cmd := exec.Command(igBin(), args...)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(bound):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("ig %v kept running: %s", args, out)
	}
	t.Logf("ig %v: %v\n%s", args, err, out)
	require.Error(t, err, "ig %v must exit non-zero", args)
	return string(out)
}

// igOK runs ig with args, which must succeed; it returns the output.
func igOK(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(igBin(), args...).CombinedOutput()
	require.NoError(t, err, "ig %v: %s", args, out)
	return string(out)
}

// Lines returns the output lines so far.
func (g *IG) Lines() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.lines...)
}

// Events decodes the JSON lines so far.
func (g *IG) Events(t *testing.T) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for _, l := range g.Lines() {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &ev), l)
		evs = append(evs, ev)
	}
	return evs
}

// wait polls check until it holds, ig exits or timeout passes.
func (g *IG) wait(timeout time.Duration, check func() bool) {
	end := time.Now().Add(timeout)
	for !check() && time.Now().Before(end) {
		select {
		case <-g.done:
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitQuiet waits until no line has come for quiet, ig exits or timeout
// passes.
func (g *IG) waitQuiet(quiet, timeout time.Duration) {
	called := time.Now()
	g.wait(timeout, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		last := called
		if n := len(g.arrived); n > 0 && g.arrived[n-1].After(last) {
			last = g.arrived[n-1]
		}
		return time.Since(last) >= quiet
	})
}

// WaitEvents waits until done holds for the decoded events, or timeout.
func (g *IG) WaitEvents(t *testing.T, timeout time.Duration, done func([]map[string]any) bool) []map[string]any {
	t.Helper()
	g.wait(timeout, func() bool { return done(g.Events(t)) })
	return g.Events(t)
}

// WaitLines waits until done holds for the output lines, or timeout.
func (g *IG) WaitLines(t *testing.T, timeout time.Duration, done func([]string) bool) []string {
	g.wait(timeout, func() bool { return done(g.Lines()) })
	return g.Lines()
}

// get reads a dotted path such as "proc.comm" from a JSON event.
func get(ev map[string]any, path string) any {
	var cur any = ev
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func str(ev map[string]any, path string) string {
	v := get(ev, path)
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func count(evs []map[string]any, keep func(map[string]any) bool) int {
	n := 0
	for _, e := range evs {
		if keep(e) {
			n++
		}
	}
	return n
}

// sh runs a shell command and returns its combined output.
func sh(t *testing.T, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "-c", script).CombinedOutput()
	require.NoError(t, err, "%s\n%s", script, out)
	return string(out)
}

// LossyClient starts a client container whose eth0 drops pct% of packets.
func LossyClient(t *testing.T, name string, pct int) {
	t.Helper()
	sh(t, guide(fmt.Sprintf("lossy_client %s %d", name, pct)))
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
}

// Fetch runs n bounded downloads of the web server's big file in a
// container (errors are expected on a lossy link and ignored).
func Fetch(t *testing.T, container string, n int) {
	t.Helper()
	sh(t, guide(fmt.Sprintf("fetch %s %d", container, n)))
}
