//go:build k8s

package k8s

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"trace_tcpretrans/go/contract"
	"trace_tcpretrans/test/gadgettest"
	"trace_tcpretrans/test/k8s/cluster"
)

const (
	ns      = "test-trace-tcpretrans"
	otherNS = "test-trace-tcpretrans-other"
	busybox = "localhost/trace-tcpretrans-test/busybox:1"
	// igImage is the DaemonSet image scripts/k8s.sh builds and imports.
	igImage = "localhost/trace-tcpretrans-test/inspektor-gadget:v0.50.1"
)

// lossy is one container that downloads from the web server through an
// interface that drops 25% of its packets.
type lossy struct{ ns, pod, container string }

var clients = []lossy{
	{ns, "client", "client"},
	{ns, "client", "sidecar"},
	{ns, "client2", "client"},
	{otherNS, "other", "client"},
}

// workloads is the guide with pods: a web server behind a Service, and
// client pods with NET_ADMIN (as the guide's shell pod) in two namespaces.
func workloads() string {
	pod := func(namespace, name string, containers ...string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n", name, namespace)
		for _, c := range containers {
			fmt.Fprintf(&b, "  - {name: %s, image: %q, imagePullPolicy: Never, command: [/bin/sleep, \"3600\"], securityContext: {capabilities: {add: [NET_ADMIN]}}}\n", c, busybox)
		}
		return b.String()
	}
	return strings.Join([]string{
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: " + ns + "}\n",
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: " + otherNS + "}\n",
		fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: web, namespace: %s, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {name: web, image: %q, imagePullPolicy: Never, command: [/bin/httpd, -f, -p, "80", -h, /www]}
`, ns, busybox),
		"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: " + ns + "}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 80}]\n",
		pod(ns, "client", "client", "sidecar"),
		pod(ns, "client2", "client"),
		pod(otherNS, "other", "client"),
	}, "---\n")
}

// containerPID is the node PID of a pod's container (its task in
// containerd's k8s.io namespace).
func containerPID(t *testing.T, c lossy) string {
	t.Helper()
	id := mustKubectl(t, time.Minute, "get", "pod", "-n", c.ns, c.pod, "-o",
		fmt.Sprintf(`jsonpath={.status.containerStatuses[?(@.name=="%s")].containerID}`, c.container))
	id = strings.TrimPrefix(strings.TrimSpace(id), "containerd://")
	require.NotEmpty(t, id, "container %v", c)
	for _, l := range strings.Split(sh(t, "ctr -n k8s.io task ls"), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == id {
			return f[1]
		}
	}
	t.Fatalf("no containerd task for %v (%s)", c, id)
	return ""
}

// retransSegs reads TcpRetransSegs of a container's network namespace.
func retransSegs(t *testing.T, c lossy) int64 {
	t.Helper()
	n, err := gadgettest.SNMPField(sh(t, "nsenter -t "+containerPID(t, c)+" -n cat /proc/net/snmp"), "Tcp", "RetransSegs")
	require.NoError(t, err)
	return n
}

// fetch runs, in every lossy container at once, ten bounded downloads of
// the web page through the Service (failures on a lossy link are expected).
func fetch(t *testing.T, webIP string) {
	t.Helper()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = kubectl(3*time.Minute, "exec", "-n", c.ns, c.pod, "-c", c.container, "--", "/bin/sh", "-c",
				"for i in $(seq 10); do timeout 10 wget -q -O /dev/null http://"+webIP+"/index.html; done")
		}()
	}
	wg.Wait()
}

// fetchUntil repeats fetch until done holds for r's output (at most six
// rounds), then waits two seconds for the last rows.
func fetchUntil(t *testing.T, r *run, webIP string, done func() bool) {
	t.Helper()
	for round := 1; round <= 6 && !done(); round++ {
		progress("downloads, round %d", round)
		fetch(t, webIP)
	}
	time.Sleep(2 * time.Second)
}

// gadgetObjects lists the gadget's programs and its config map left on the
// node (the kernel cuts names to 15 characters).
func gadgetObjects(t *testing.T) []string {
	t.Helper()
	var left []string
	progs := sh(t, "bpftool prog show")
	for _, p := range contract.Programs {
		if strings.Contains(progs, "name "+p+" ") || strings.Contains(progs, "name "+p+"\n") {
			left = append(left, "program "+p)
		}
	}
	if strings.Contains(sh(t, "bpftool map show"), "name "+contract.ConfigMap[:15]) {
		left = append(left, "map "+contract.ConfigMap[:15])
	}
	return left
}

// metricsPort is where the daemon serves Prometheus metrics, on its pod's IP.
const metricsPort = 2224

// segmentSeries scrapes url and returns the labels (and "value") of every
// tcp_retransmitted_segments_total series, parsed by Prometheus' parser.
func segmentSeries(t *testing.T, url string) []map[string]string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	var out []map[string]string
	for _, m := range fams["tcp_retransmitted_segments_total"].GetMetric() {
		l := map[string]string{"value": fmt.Sprint(m.GetCounter().GetValue())}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		out = append(out, l)
	}
	return out
}

// nodePatch fits the DaemonSet to this node: the probes get the time a TCG
// guest needs and run less often (each run execs gadgettracermanager, a
// 100 MB Go program, in the pod, which under TCG takes longer than the
// probes' 1 s timeout), and the pod shares the host's PID namespace (hostPID), since
// with hostPID=false the daemon reads BPF iterators through a transient
// systemd unit on the host, and this node has no systemd.
const nodePatch = `[
 {"op": "add", "path": "/spec/template/spec/hostPID", "value": true},
 {"op": "add", "path": "/spec/template/spec/containers/0/startupProbe/timeoutSeconds", "value": 60},
 {"op": "add", "path": "/spec/template/spec/containers/0/startupProbe/periodSeconds", "value": 10},
 {"op": "add", "path": "/spec/template/spec/containers/0/startupProbe/failureThreshold", "value": 30},
 {"op": "add", "path": "/spec/template/spec/containers/0/readinessProbe/timeoutSeconds", "value": 60},
 {"op": "add", "path": "/spec/template/spec/containers/0/readinessProbe/periodSeconds", "value": 60}
]`

// The gadget through `kubectl gadget` as users run it: deployed with the
// local DaemonSet image, the image pulled by the daemon from a registry and
// verified with the key it was signed with, the guide's pods.
func TestKubectlGadget(t *testing.T) {
	ref := *gadgetRef
	reg, _, _ := strings.Cut(ref, "/")
	pub, err := os.ReadFile(*pubKey)
	require.NoError(t, err)
	keys := t.TempDir()

	ok := t.Run("deploy", func(t *testing.T) {
		cfg := filepath.Join(keys, "daemon.yaml")
		indented := "      " + strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      ")
		require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`operator:
  oci:
    insecure-registries:
    - %s
    public-keys:
    - |
%s
    verify-image: true
  otel-metrics:
    otel-metrics-listen: true
    otel-metrics-listen-address: 0.0.0.0:%d
`, reg, indented, metricsPort)), 0o644))
		progress("kubectl gadget deploy")
		t0 := time.Now()
		out := mustKubectl(t, 5*time.Minute, "gadget", "deploy", "--image", igImage, "--image-pull-policy", "Never",
			"--daemon-config", cfg, "--liveness-probe=false", "--wait=false")
		t.Logf("kubectl gadget deploy:\n%s", out)
		// Under TCG one run of the probes' command (gadgettracermanager
		// -liveness) takes longer than their 1 and 2 s timeouts, and the
		// daemon longer than the startup probe's minute to start; and see
		// nodePatch for hostPID.
		mustKubectl(t, time.Minute, "patch", "daemonset", "gadget", "-n", "gadget", "--type=json", "-p", nodePatch)
		mustKubectl(t, 10*time.Minute, "rollout", "status", "daemonset/gadget", "-n", "gadget", "--timeout=9m")
		progress("the gadget pod is Ready after %s", time.Since(t0).Round(time.Second))
		ready := mustKubectl(t, time.Minute, "get", "pods", "-n", "gadget", "-o", `jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}`)
		assert.Equal(t, "True", strings.TrimSpace(ready), "the gadget pod is Ready")
		t.Log(mustKubectl(t, time.Minute, "gadget", "version"))
	})
	require.True(t, ok, "Inspektor Gadget is not deployed: nothing else can run")

	progress("deployed; applying the workloads")
	apply(t, workloads())
	webIP := strings.TrimSpace(mustKubectl(t, time.Minute, "get", "service", "-n", ns, "web", "-o", "jsonpath={.spec.clusterIP}"))
	mustKubectl(t, 5*time.Minute, "wait", "--for=condition=Ready", "pod", "--all", "-n", ns, "--timeout=300s")
	mustKubectl(t, 5*time.Minute, "wait", "--for=condition=Ready", "pod", "--all", "-n", otherNS, "--timeout=300s")
	for _, c := range clients {
		if c.container == "client" {
			sh(t, "nsenter -t "+containerPID(t, c)+" -n tc qdisc add dev eth0 root netem drop 25%")
		}
	}

	t.Run("namespace, json", func(t *testing.T) {
		otherBefore := retransSegs(t, clients[3])
		r := startRun(t, ref, "-n", ns, "-o", "json")
		fromClient := func(e map[string]any) bool {
			return str(e, "k8s.podName") == "client" && str(e, "k8s.containerName") == "client" && str(e, "proc.comm") == "wget"
		}
		fetchUntil(t, r, webIP, func() bool {
			evs := r.events(t)
			return slices.ContainsFunc(evs, fromClient) && slices.ContainsFunc(evs, func(e map[string]any) bool { return str(e, "k8s.podName") == "client2" })
		})
		r.stop(t)
		evs := r.events(t)
		require.NotEmpty(t, evs, "events; stderr:\n%s", r.stderr.String())
		t.Logf("%d events; the first: %v", len(evs), evs[0])
		assert.True(t, slices.ContainsFunc(evs, fromClient), "a retransmission of wget in pod client, container client")
		for _, e := range evs {
			assert.Equal(t, cluster.NodeName, str(e, "k8s.node"), "%v", e)
			assert.Equal(t, ns, str(e, "k8s.namespace"), "only the selected namespace: %v", e)
			assert.Contains(t, []string{"client", "client2", "web"}, str(e, "k8s.podName"), "%v", e)
			assert.Contains(t, contract.State.Names(), str(e, "state"), "state by name: %v", e)
			assert.Contains(t, contract.Reason.Names(), str(e, "reason"), "reason by name: %v", e)
		}
		assert.Greater(t, retransSegs(t, clients[3]), otherBefore,
			"pod other retransmitted meanwhile (TcpRetransSegs of its namespace), and none of it was reported")
	})

	t.Run("pod and container, table", func(t *testing.T) {
		r := startRun(t, ref, "-n", ns, "-p", "client", "-c", "client")
		// The events' table; the daemon also forwards the count mode's
		// data source, whose one (empty) table comes when the run stops.
		split := func() (events, flows []string) {
			out := r.output()
			i := slices.IndexFunc(out, func(l string) bool {
				f := strings.Fields(l)
				return len(f) > 5 && f[0] == "SRC" && slices.Contains(f, "RETRANS")
			})
			if i < 0 {
				return out, nil
			}
			return out[:i], out[i:]
		}
		rows := func() [][]string {
			var rows [][]string
			out, _ := split()
			if len(out) < 2 {
				return nil
			}
			for _, l := range out[1:] {
				if f := strings.Fields(l); len(f) > 4 {
					rows = append(rows, f)
				}
			}
			return rows
		}
		fetchUntil(t, r, webIP, func() bool { return len(rows()) >= 2 })
		r.stop(t)
		out, flows := split()
		assert.LessOrEqual(t, len(flows), 1, "the count mode's table, if printed, is empty: %q", flows)
		require.NotEmpty(t, out, "stderr:\n%s", r.stderr.String())
		t.Logf("kubectl gadget run %s -n %s -p client -c client:\n%s", ref, ns, strings.Join(out, "\n"))
		header := strings.Fields(out[0])
		require.GreaterOrEqual(t, len(header), 8, "header: %q", out[0])
		assert.Equal(t, []string{"K8S.NODE", "K8S.NAMESPACE", "K8S.PODNAME", "K8S.CONTAINERNAME", "SRC", "DST", "COMM", "PID", "TID", "STATE", "REASON", "TCPFLAGS", "TYPE", "TIMESTAMP"}, header)
		require.NotEmpty(t, rows(), "rows for pod client, container client")
		for _, f := range rows() {
			assert.Equal(t, []string{cluster.NodeName, ns, "client", "client"}, f[:4], "row %q", f)
		}
	})

	t.Run("metrics, detached", func(t *testing.T) {
		const name = "tcpretrans-metrics"
		// Left by a boot of this guest that bin/vm started over, if any.
		_, _ = kubectl(2*time.Minute, "gadget", "delete", name)
		out := mustKubectl(t, 5*time.Minute, "gadget", "run", ref, "-n", ns, "--name", name, "--detach",
			"--annotate", contract.DataSource+":metrics.collect=true", "--otel-metrics-name", contract.DataSource+":"+contract.DataSource)
		t.Logf("kubectl gadget run --detach: %s", out)
		t.Cleanup(func() {
			out, err := kubectl(2*time.Minute, "gadget", "delete", name)
			t.Logf("kubectl gadget delete %s: %v %s", name, err, out)
			waitFor(t, "the deleted instance's BPF objects to go", 2*time.Minute, func() error {
				if left := gadgetObjects(t); len(left) > 0 {
					return fmt.Errorf("left on the node: %v", left)
				}
				return nil
			})
		})
		waitFor(t, "the detached gadget's programs", 5*time.Minute, func() error {
			if len(gadgetObjects(t)) == 0 {
				return fmt.Errorf("not attached yet")
			}
			return nil
		})
		podIP := strings.TrimSpace(mustKubectl(t, time.Minute, "get", "pods", "-n", "gadget", "-o", "jsonpath={.items[0].status.podIP}"))
		url := fmt.Sprintf("http://%s:%d/metrics", podIP, metricsPort)
		var series []map[string]string
		fromClient := func() bool {
			series = segmentSeries(t, url)
			return slices.ContainsFunc(series, func(l map[string]string) bool {
				return l["pod"] == "client" && l["container"] == "client" && l["type"] == "RETRANS"
			})
		}
		for round := 1; round <= 6 && !fromClient(); round++ {
			progress("downloads for the metrics, round %d", round)
			fetch(t, webIP)
		}
		require.True(t, fromClient(), "a series of pod client, container client at %s", url)
		for _, l := range series {
			t.Logf("tcp_retransmitted_segments_total%v %s", l, l["value"])
			assert.Equal(t, cluster.NodeName, l["node"], "%v", l)
			assert.Equal(t, ns, l["namespace"], "only the selected namespace: %v", l)
			assert.Contains(t, contract.Reason.Names(), l["reason"])
			assert.Contains(t, contract.Type.Names(), l["type"])
		}
	})

	t.Run("bad parameter", func(t *testing.T) {
		out, err := kubectl(5*time.Minute, "gadget", "run", ref, "-n", ns, "--family", "5")
		t.Logf("kubectl gadget run %s --family 5: %v\n%s", ref, err, out)
		require.Error(t, err, "a bad --family must exit non-zero")
		for _, w := range []string{"family", "5", "0, 4, 6"} {
			assert.Contains(t, out, w)
		}
		assert.Empty(t, gadgetObjects(t), "nothing of the gadget left after the refused run")
	})

	t.Run("undeploy", func(t *testing.T) {
		out := mustKubectl(t, 10*time.Minute, "gadget", "undeploy", "--delete-namespace")
		t.Logf("kubectl gadget undeploy --delete-namespace:\n%s", out)
		_, err := kubectl(time.Minute, "get", "namespace", "gadget")
		assert.Error(t, err, "namespace gadget is gone")
		waitFor(t, "the gadget's BPF objects to go", time.Minute, func() error {
			if left := gadgetObjects(t); len(left) > 0 {
				return fmt.Errorf("left on the node: %v", left)
			}
			return nil
		})
		out2, _ := exec.Command("bpftool", "prog", "show").CombinedOutput()
		t.Logf("BPF programs on the node after undeploy:\n%s", out2)
	})
}
