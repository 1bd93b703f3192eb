// Package cluster runs a single-node Kubernetes cluster on the machine it
// runs on: containerd with a bridge CNI network, etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kubelet and kube-proxy, from
// binaries and image archives built by scripts/k8s.sh. It changes the
// machine (mounts, a dummy interface, sysctls, the hostname), so it runs in
// the guests of bin/vm, never on a host people use.
package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The cluster's fixed addresses. The node has no network card: its address
// is on a dummy interface with the default route.
const (
	NodeName    = "tcpretrans-node"
	NodeIP      = "192.168.200.2"
	nodeGateway = "192.168.200.1"
	PodCIDR     = "10.244.0.0/24"
	ServiceCIDR = "10.96.0.0/24"
	apiServerIP = "10.96.0.1" // the first address of ServiceCIDR
	// PauseImage is the sandbox image containerd runs for every pod.
	PauseImage = "localhost/trace-tcpretrans-test/pause:3.10"
)

// Parts is the directory scripts/k8s.sh fills: bin/ (the binaries) and
// images/ (docker-save archives).
type Parts string

// Bin is the path of one binary.
func (p Parts) Bin(name string) string { return filepath.Join(string(p), "bin", name) }

// Images are the image archives to import into containerd.
func (p Parts) Images() ([]string, error) {
	return filepath.Glob(filepath.Join(string(p), "images", "*.tar"))
}

// Options for Start.
type Options struct {
	Parts Parts
	Work  string // certificates, configs, logs and etcd's data
	Logf  func(format string, args ...any)
}

// Cluster is a running cluster.
type Cluster struct {
	Kubeconfig string // admin (system:masters)
	CA         string
	o          Options
	procs      []*proc
	kubelet    *proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// guestMarker is the file bin/vm's guests have (the script of their run).
var guestMarker = "/vmrun/stage2.sh"

// InGuest says whether this process runs in a bin/vm guest, whose root is
// a throwaway overlay.
func InGuest() bool {
	_, err := os.Stat(guestMarker)
	return err == nil
}

// Start prepares the node and starts every component, each waited for;
// on error what started is stopped.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if !InGuest() {
		return nil, errors.New("the cluster changes mounts, interfaces and sysctls of the machine: it runs only in a bin/vm guest")
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	c := &Cluster{o: o, Kubeconfig: filepath.Join(o.Work, "admin.kubeconfig"), CA: filepath.Join(o.Work, "ca.crt")}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"node", c.prepareNode},
		{"certificates", c.certificates},
		{"containerd", c.startContainerd},
		{"images", c.importImages},
		{"etcd", c.startEtcd},
		{"kube-apiserver", c.startAPIServer},
		{"controllers", c.startControllers},
		{"kubelet", c.startKubelet},
		{"kube-proxy", c.startKubeProxy},
		{"node Ready", c.waitReady},
	}
	for _, s := range steps {
		t0 := time.Now()
		if err := s.fn(ctx); err != nil {
			c.Stop()
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		o.Logf("cluster: %s in %s", s.name, time.Since(t0).Round(100*time.Millisecond))
	}
	return c, nil
}

// Stop stops the components, newest first (kube-apiserver before etcd).
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	c.procs = nil
}

// Logs returns the last lines of each component's log, for a failure.
func (c *Cluster) Logs(lines int) string {
	var b strings.Builder
	for _, p := range c.procs {
		data, _ := os.ReadFile(p.log)
		all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		fmt.Fprintf(&b, "==== %s (%s)\n%s\n", p.name, p.log, strings.Join(all, "\n"))
	}
	return b.String()
}

// Kubectl runs kubectl as the admin and returns its combined output.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.o.Parts.Bin("kubectl"), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (c *Cluster) path(name string) string { return filepath.Join(c.o.Work, name) }

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// prepareNode: tmpfs state directories, shared mount propagation, every
// cgroup v2 controller delegated, br_netfilter and forwarding, the dummy
// interface with the node's address, and the hostname.
func (c *Cluster) prepareNode(context.Context) error {
	for _, d := range []string{"/var/lib/containerd", "/var/lib/kubelet", "/var/log/pods", "/var/log/containers", c.o.Work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := run("mount", "-t", "tmpfs", "tmpfs", d); err != nil {
			return err
		}
	}
	if err := run("mount", "--make-rshared", "/"); err != nil {
		return err
	}
	ctrl, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	if err != nil {
		return err
	}
	var enable []string
	for _, f := range strings.Fields(string(ctrl)) {
		enable = append(enable, "+"+f)
	}
	if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte(strings.Join(enable, " ")), 0o644); err != nil {
		return fmt.Errorf("enabling cgroup controllers %v: %w", enable, err)
	}
	for _, m := range []string{"br_netfilter", "overlay", "dummy", "bridge", "veth", "nf_conntrack"} {
		_ = run("modprobe", m)
	}
	for k, v := range map[string]string{
		"net/ipv4/ip_forward":                 "1",
		"net/bridge/bridge-nf-call-iptables":  "1",
		"net/bridge/bridge-nf-call-ip6tables": "1",
	} {
		if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
			return fmt.Errorf("sysctl %s: %w", k, err)
		}
	}
	for _, args := range [][]string{
		{"link", "add", "node0", "type", "dummy"},
		{"addr", "add", NodeIP + "/24", "dev", "node0"},
		{"link", "set", "node0", "up"},
		{"route", "add", "default", "via", nodeGateway, "dev", "node0"},
	} {
		if err := run("ip", args...); err != nil {
			return err
		}
	}
	if err := syscall.Sethostname([]byte(NodeName)); err != nil {
		return err
	}
	hosts, _ := os.ReadFile("/etc/hosts")
	return os.WriteFile("/etc/hosts", append(hosts, []byte(fmt.Sprintf("%s %s\n", NodeIP, NodeName))...), 0o644)
}

// certificates: the CA, kube-apiserver's serving certificate, the admin's
// (system:masters; also kube-apiserver's client certificate to kubelets and
// the controllers' credentials), the node's and the service-account keys.
func (c *Cluster) certificates(context.Context) error {
	p, err := newPKI(c.o.Work)
	if err != nil {
		return err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(apiServerIP), net.ParseIP(NodeIP)}
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if err := p.issue("apiserver", "kube-apiserver", nil, ips, dns); err != nil {
		return err
	}
	if err := p.issue("admin", "admin", []string{"system:masters"}, nil, nil); err != nil {
		return err
	}
	if err := p.issue("node", "system:node:"+NodeName, []string{"system:nodes"}, nil, nil); err != nil {
		return err
	}
	if err := p.serviceAccountKey(); err != nil {
		return err
	}
	if err := c.kubeconfig("admin"); err != nil {
		return err
	}
	return c.kubeconfig("node")
}

func (c *Cluster) kubeconfig(user string) error {
	return writeFile(c.path(user+".kubeconfig"), fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: %[1]s/ca.crt
users:
- name: %[2]s
  user:
    client-certificate: %[1]s/%[2]s.crt
    client-key: %[1]s/%[2]s.key
contexts:
- name: test
  context: {cluster: test, user: %[2]s}
current-context: test
`, c.o.Work, user))
}

// start runs a component with its output in Work/<name>.log.
func (c *Cluster) start(name, bin string, args ...string) (*proc, error) {
	logPath := c.path(name + ".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return p, nil
}

// waitFor polls cond until it holds, the process exits or time runs out.
func (c *Cluster) waitFor(ctx context.Context, p *proc, what string, limit time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	for {
		if last = cond(); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v) before %s; its log:\n%s", p.name, p.err, what, tail(p.log, 40))
		case <-ctx.Done():
			return fmt.Errorf("no %s after %s: %v; %s's log:\n%s", what, limit, last, p.name, tail(p.log, 40))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

const containerdConfig = `version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "%s"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
`

const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "%s"}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

func (c *Cluster) startContainerd(ctx context.Context) error {
	if err := writeFile("/etc/cni/net.d/10-pods.conflist", fmt.Sprintf(cniConfig, PodCIDR)); err != nil {
		return err
	}
	cfg := c.path("containerd.toml")
	if err := writeFile(cfg, fmt.Sprintf(containerdConfig, PauseImage)); err != nil {
		return err
	}
	p, err := c.start("containerd", "containerd", "--config", cfg)
	if err != nil {
		return err
	}
	return c.waitFor(ctx, p, "containerd's socket", 90*time.Second, func() error {
		return run("ctr", "--address", "/run/containerd/containerd.sock", "version")
	})
}

func (c *Cluster) importImages(context.Context) error {
	archives, err := c.o.Parts.Images()
	if err != nil {
		return err
	}
	if len(archives) == 0 {
		return fmt.Errorf("no image archives in %s/images: run make k8s", c.o.Parts)
	}
	for _, a := range archives {
		if err := run("ctr", "-n", "k8s.io", "images", "import", a); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	p, err := c.start("etcd", c.o.Parts.Bin("etcd"),
		"--name", "default", "--data-dir", c.path("etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "default=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level", "warn")
	if err != nil {
		return err
	}
	return c.waitFor(ctx, p, "etcd's /health", 60*time.Second, func() error {
		return httpOK(http.DefaultClient, "http://127.0.0.1:2379/health")
	})
}

func httpOK(cl *http.Client, url string) error {
	resp, err := cl.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// adminClient is an HTTPS client with the admin's certificate.
func (c *Cluster) adminClient() (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(c.path("admin.crt"), c.path("admin.key"))
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(c.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool},
	}}, nil
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	w := c.o.Work
	p, err := c.start("kube-apiserver", c.o.Parts.Bin("kube-apiserver"),
		"--etcd-servers", "http://127.0.0.1:2379",
		"--bind-address", "0.0.0.0", "--secure-port", "6443", "--advertise-address", NodeIP,
		"--service-cluster-ip-range", ServiceCIDR,
		"--client-ca-file", w+"/ca.crt",
		"--tls-cert-file", w+"/apiserver.crt", "--tls-private-key-file", w+"/apiserver.key",
		"--kubelet-client-certificate", w+"/admin.crt", "--kubelet-client-key", w+"/admin.key",
		"--service-account-key-file", w+"/sa.pub", "--service-account-signing-key-file", w+"/sa.key",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--authorization-mode", "Node,RBAC", "--allow-privileged=true",
		"--profiling=false", "--v=1")
	if err != nil {
		return err
	}
	cl, err := c.adminClient()
	if err != nil {
		return err
	}
	return c.waitFor(ctx, p, "kube-apiserver's /readyz", 180*time.Second, func() error {
		return httpOK(cl, "https://127.0.0.1:6443/readyz")
	})
}

// startControllers starts kube-controller-manager and kube-scheduler and
// waits for the default service account, which the controllers make.
func (c *Cluster) startControllers(ctx context.Context) error {
	w := c.o.Work
	cm, err := c.start("kube-controller-manager", c.o.Parts.Bin("kube-controller-manager"),
		"--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--bind-address", "127.0.0.1",
		"--service-account-private-key-file", w+"/sa.key", "--root-ca-file", w+"/ca.crt",
		"--cluster-signing-cert-file", w+"/ca.crt", "--cluster-signing-key-file", w+"/ca.key",
		"--profiling=false", "--v=1")
	if err != nil {
		return err
	}
	if _, err := c.start("kube-scheduler", c.o.Parts.Bin("kube-scheduler"),
		"--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--bind-address", "127.0.0.1",
		"--profiling=false", "--v=1"); err != nil {
		return err
	}
	return c.waitFor(ctx, cm, "the default service account", 120*time.Second, func() error {
		_, err := c.Kubectl(ctx, "get", "serviceaccount", "default", "-n", "default")
		return err
	})
}

const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
failSwapOn: false
localStorageCapacityIsolation: false
evictionHard:
  memory.available: "0%%"
  nodefs.available: "0%%"
  nodefs.inodesFree: "0%%"
  imagefs.available: "0%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
runtimeRequestTimeout: 10m
serializeImagePulls: false
podCIDR: %s
clusterDomain: cluster.local
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %s}
authorization: {mode: AlwaysAllow}
`

func (c *Cluster) startKubelet(ctx context.Context) error {
	cfg := c.path("kubelet.yaml")
	if err := writeFile(cfg, fmt.Sprintf(kubeletConfig, PodCIDR, c.CA)); err != nil {
		return err
	}
	p, err := c.start("kubelet", c.o.Parts.Bin("kubelet"),
		"--config", cfg, "--kubeconfig", c.path("node.kubeconfig"),
		"--node-ip", NodeIP, "--hostname-override", NodeName, "--root-dir", "/var/lib/kubelet", "--v=1")
	if err != nil {
		return err
	}
	c.kubelet = p
	return c.waitFor(ctx, p, "the node's registration", 180*time.Second, func() error {
		_, err := c.Kubectl(ctx, "get", "node", NodeName)
		return err
	})
}

func (c *Cluster) startKubeProxy(ctx context.Context) error {
	p, err := c.start("kube-proxy", c.o.Parts.Bin("kube-proxy"),
		"--kubeconfig", c.Kubeconfig, "--hostname-override", NodeName, "--proxy-mode", "iptables",
		"--cluster-cidr", PodCIDR, "--conntrack-max-per-core", "0", "--v=1")
	if err != nil {
		return err
	}
	return c.waitFor(ctx, p, "kube-proxy's rules for kubernetes.default", 120*time.Second, func() error {
		out, err := exec.Command("iptables-save", "-t", "nat").CombinedOutput()
		if err != nil {
			return err
		}
		if !strings.Contains(string(out), apiServerIP+"/32") {
			return errors.New("no rule for " + apiServerIP)
		}
		return nil
	})
}

func (c *Cluster) waitReady(ctx context.Context) error {
	return c.waitFor(ctx, c.kubelet, "node Ready", 180*time.Second, func() error {
		out, err := c.Kubectl(ctx, "get", "node", NodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "True" {
			return fmt.Errorf("Ready=%q", out)
		}
		return nil
	})
}
