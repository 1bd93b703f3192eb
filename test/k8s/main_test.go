//go:build k8s

// Package k8s runs the gadget through `kubectl gadget` on a real
// single-node Kubernetes cluster (package cluster) inside a bin/vm guest:
// Inspektor Gadget deployed with `kubectl gadget deploy`, the gadget image
// pulled by its daemon from a registry on the node and verified with the
// test's cosign key, pods whose interface drops packets. make test-k8s runs
// it (scripts/integration.sh k8s@KERNEL).
package k8s

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

	"trace_tcpretrans/test/k8s/cluster"
)

var (
	repo      = flag.String("repo", "../..", "repository root (scripts/)")
	parts     = flag.String("parts", "", "the cluster's parts (scripts/k8s.sh prints the directory)")
	plane     = flag.String("control-plane", "", "the control plane's directory (certificates, kubeconfigs), shared by the host that runs it")
	gadgetRef = flag.String("image", "", "the gadget image as the daemon pulls it, from the registry on the host's side of the link")
	pubKey    = flag.String("public-key", "", "the cosign public key the image was signed with (PEM file)")
)

// The cluster every test uses, started once by TestMain.
var kc *cluster.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	if *gadgetRef == "" || *parts == "" || *plane == "" || *pubKey == "" {
		fmt.Fprintln(os.Stderr, "-image, -public-key, -parts and -control-plane are required (make test-k8s passes them)")
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the k8s tests run a Kubernetes node: run them as root, in a bin/vm guest")
		os.Exit(1)
	}
	abs, err := filepath.Abs(*repo)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*repo = abs
	kc, err = cluster.StartNode(context.Background(), cluster.Options{
		Parts: cluster.Parts(*parts), Work: *plane,
		Logf: progress,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the cluster:", err)
		os.Exit(1)
	}
	progress("cluster: up")
	// kubectl finds kubectl-gadget on PATH as `kubectl gadget`.
	os.Setenv("PATH", filepath.Join(*parts, "bin")+":"+os.Getenv("PATH"))
	os.Setenv("KUBECONFIG", kc.Kubeconfig)
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, kc.Logs(30))
	}
	kc.Stop()
	os.Exit(code)
}

// started is when TestMain began: progress lines say how long since.
var started = time.Now()

// progress prints a line to the guest's console at once (t.Log shows only
// when a test ends), so that a slow step is seen where it is slow.
func progress(format string, args ...any) {
	load, _ := os.ReadFile("/proc/loadavg")
	l1, _, _ := strings.Cut(string(load), " ")
	fmt.Fprintf(os.Stderr, "k8s: [%4.0fs load %s] %s\n", time.Since(started).Seconds(), l1, fmt.Sprintf(format, args...))
}

// kubectl runs kubectl (which runs kubectl-gadget for `kubectl gadget`)
// with a bound and returns its combined output and error.
func kubectl(bound time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kubectl", args...).CombinedOutput()
	return string(out), err
}

// mustKubectl is kubectl that must succeed.
func mustKubectl(t *testing.T, bound time.Duration, args ...string) string {
	t.Helper()
	out, err := kubectl(bound, args...)
	require.NoError(t, err, "kubectl %s:\n%s", strings.Join(args, " "), out)
	return out
}

// apply applies a manifest.
func apply(t *testing.T, manifest string) {
	t.Helper()
	cmd := exec.Command("kubectl", "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "kubectl apply:\n%s\n%s", manifest, out)
}

// sh runs a shell command on the node and returns its combined output.
func sh(t *testing.T, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "-c", script).CombinedOutput()
	require.NoError(t, err, "%s\n%s", script, out)
	return string(out)
}

// guide prefixes a shell command with the guide fixture's functions.
func guide(command string) string {
	return ". " + filepath.Join(*repo, "scripts/guide.sh") + " && " + command
}

// waitFor polls cond every half second until it holds or bound passes.
func waitFor(t *testing.T, what string, bound time.Duration, cond func() error) {
	t.Helper()
	end := time.Now().Add(bound)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("waiting %s for %s: %v", bound, what, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// run is a running `kubectl gadget run`.
type run struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	mu     sync.Mutex
	lines  []string
	done   chan struct{}
}

// startRun starts `kubectl gadget run ARGS...` and waits until the
// gadget's programs are attached on the node.
func startRun(t *testing.T, args ...string) *run {
	t.Helper()
	progress("kubectl gadget run %s", strings.Join(args, " "))
	t0 := time.Now()
	r := &run{cmd: exec.Command("kubectl", append([]string{"gadget", "run"}, args...)...), done: make(chan struct{})}
	pipe, err := r.cmd.StdoutPipe()
	require.NoError(t, err)
	r.cmd.Stderr = &r.stderr
	require.NoError(t, r.cmd.Start())
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			r.mu.Lock()
			r.lines = append(r.lines, sc.Text())
			r.mu.Unlock()
		}
		_ = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() { r.stop(t) })
	// The daemon pulls and verifies the image, compiles the wasm operator
	// and loads the programs, all under TCG: a bound, not a speed check.
	end := time.Now().Add(300 * time.Second)
	for exec.Command("bash", "-c", guide("gadget_attached")).Run() != nil {
		select {
		case <-r.done:
			t.Fatalf("kubectl gadget run exited before attaching: %v\n%s", r.cmd.ProcessState, r.stderr.String())
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("the gadget was not attached within 300 s\n%s", r.stderr.String())
		}
		time.Sleep(300 * time.Millisecond)
	}
	progress("attached after %s", time.Since(t0).Round(time.Second))
	return r
}

// stop interrupts the run and waits for it to end.
func (r *run) stop(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
		t.Errorf("kubectl gadget run did not stop within 60 s of SIGINT")
	}
}

func (r *run) output() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// events decodes the JSON lines so far.
func (r *run) events(t *testing.T) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for _, l := range r.output() {
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

// str reads a dotted path such as "k8s.podName" from a JSON event.
func str(ev map[string]any, path string) string {
	var cur any = ev
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	if cur == nil {
		return ""
	}
	return fmt.Sprint(cur)
}
