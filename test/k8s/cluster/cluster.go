// Package cluster runs a single-node Kubernetes cluster split in two: the
// control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler) natively on the host, where it costs little, and the node
// (containerd with a bridge CNI network, kubelet, kube-proxy) in a bin/vm
// guest, where ig has kprobes and a PID 1 to see. The two meet on a TAP
// link: HostIP on the host's side, NodeIP on the guest's. Binaries and
// image archives come from scripts/k8s.sh. The node changes the machine
// (mounts, interfaces, sysctls, hostname), so it runs only in a guest.
package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The cluster's fixed addresses.
const (
	NodeName    = "tcpretrans-node"
	HostIP      = "192.168.200.1" // the host's end of the TAP link: kube-apiserver
	NodeIP      = "192.168.200.2" // the guest's end
	PodCIDR     = "10.244.0.0/24"
	ServiceCIDR = "10.96.0.0/24"
	apiServerIP = "10.96.0.1" // the first address of ServiceCIDR
	apiServer   = "https://" + HostIP + ":6443"
	// etcd on the host's loopback, away from etcd's usual ports.
	etcdClientURL = "http://127.0.0.1:23790"
	etcdPeerURL   = "http://127.0.0.1:23800"
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
	Work  string // certificates and kubeconfigs (shared by host and guest), logs, etcd's data
	Logf  func(format string, args ...any)
}

// Cluster is a running cluster.
type Cluster struct {
	Kubeconfig string // admin (system:masters)
	CA         string
	o          Options
	mu         sync.Mutex
	procs      []*proc // in the order they started
	kubelet    *proc
	api        *http.Client // the admin's
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

// StartControlPlane makes the certificates and kubeconfigs in o.Work and
// starts etcd, kube-apiserver (on HostIP, which must exist: the TAP's
// address), kube-controller-manager and kube-scheduler, each waited for.
func StartControlPlane(ctx context.Context, o Options) (*Cluster, error) {
	c := newCluster(o)
	return c, c.runPhases(ctx, [][]step{
		{{"certificates", c.certificates}},
		{{"etcd", c.startEtcd}},
		{{"kube-apiserver", c.startAPIServer}},
		{{"controllers", c.startControllers}},
	})
}

// StartNode prepares this guest as the node and starts containerd (with
// the images), kubelet and kube-proxy against the control plane whose
// o.Work it shares, and waits until the node is Ready.
func StartNode(ctx context.Context, o Options) (*Cluster, error) {
	if !InGuest() {
		return nil, errors.New("the node changes mounts, interfaces and sysctls of the machine: it runs only in a bin/vm guest")
	}
	c := newCluster(o)
	var err error
	if c.api, err = c.adminClient(); err != nil {
		return nil, fmt.Errorf("the control plane's credentials in %s: %w", o.Work, err)
	}
	return c, c.runPhases(ctx, [][]step{
		{{"node", c.prepareNode}},
		{{"control plane reachable", c.waitAPIServer}},
		{{"containerd", c.startContainerd}},
		{{"images", c.importImages}},
		{{"kubelet", c.startKubelet}, {"kube-proxy", c.startKubeProxy}},
		{{"node Ready", c.waitReady}},
	})
}

func newCluster(o Options) *Cluster {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return &Cluster{o: o, Kubeconfig: filepath.Join(o.Work, "admin.kubeconfig"), CA: filepath.Join(o.Work, "ca.crt")}
}

// runPhases runs the phases in order; on error it stops what started.
func (c *Cluster) runPhases(ctx context.Context, phases [][]step) error {
	for _, phase := range phases {
		if err := c.runPhase(ctx, phase); err != nil {
			c.Stop()
			return err
		}
	}
	return nil
}

type step struct {
	name string
	fn   func(context.Context) error
}

// runPhase runs the steps side by side and returns the first error.
func (c *Cluster) runPhase(ctx context.Context, steps []step) error {
	errs := make([]error, len(steps))
	var wg sync.WaitGroup
	for i, s := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			if err := s.fn(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", s.name, err)
				return
			}
			c.o.Logf("cluster: %s in %s", s.name, time.Since(t0).Round(100*time.Millisecond))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Stop stops the components, newest first (kube-apiserver before etcd).
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, p := range c.procs {
		fmt.Fprintf(&b, "==== %s (%s)\n%s\n", p.name, p.log, tail(p.log, lines))
	}
	return b.String()
}

func (c *Cluster) path(name string) string { return filepath.Join(c.o.Work, name) }

// logDir holds the components' logs: Work on the host, a local directory in
// the guest (Work is shared over 9p there).
func (c *Cluster) logDir() string {
	if InGuest() {
		return "/var/log/trace-tcpretrans-node"
	}
	return c.o.Work
}

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
	for _, d := range []string{"/var/lib/containerd", "/var/lib/kubelet", "/var/log/pods", "/var/log/containers", c.logDir()} {
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
	for _, m := range []string{"br_netfilter", "overlay", "bridge", "veth", "nf_conntrack", "virtio_net"} {
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
	nic, err := guestNIC()
	if err != nil {
		return err
	}
	for _, args := range [][]string{
		{"addr", "add", NodeIP + "/24", "dev", nic},
		{"link", "set", nic, "up"},
		{"route", "add", "default", "via", HostIP, "dev", nic},
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

// guestNIC is the guest's network card (bin/vm -tap): its only interface
// besides loopback, waited for while its driver binds.
func guestNIC() (string, error) {
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		ents, err := os.ReadDir("/sys/class/net")
		if err != nil {
			return "", err
		}
		for _, e := range ents {
			if _, err := os.Stat("/sys/class/net/" + e.Name() + "/device"); err == nil {
				return e.Name(), nil
			}
		}
	}
	return "", errors.New("the guest has no network card: boot it with bin/vm -tap")
}

// certificates: the CA, kube-apiserver's serving certificate, the admin's
// (system:masters; also kube-apiserver's client certificate to kubelets and
// the controllers' credentials), the node's and the service-account keys.
func (c *Cluster) certificates(context.Context) error {
	p, err := newPKI(c.o.Work)
	if err != nil {
		return err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(apiServerIP), net.ParseIP(HostIP)}
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
    server: %[3]s
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
`, c.o.Work, user, apiServer))
}

// start runs a component with its output in Work/<name>.log.
func (c *Cluster) start(name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(c.logDir(), name+".log")
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
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
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
		"--listen-client-urls", etcdClientURL, "--advertise-client-urls", etcdClientURL,
		"--listen-peer-urls", etcdPeerURL, "--initial-advertise-peer-urls", etcdPeerURL,
		"--initial-cluster", "default="+etcdPeerURL, "--unsafe-no-fsync", "--log-level", "warn")
	if err != nil {
		return err
	}
	return c.waitFor(ctx, p, "etcd's /health", 60*time.Second, func() error {
		return httpOK(http.DefaultClient, etcdClientURL+"/health")
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

// get reads an object of the API (as JSON into v, unless v is nil): polling
// with HTTP costs the guest far less than running kubectl.
func (c *Cluster) get(path string, v any) error {
	resp, err := c.api.Get(apiServer + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if v == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(v)
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
		"--etcd-servers", etcdClientURL,
		"--bind-address", HostIP, "--secure-port", "6443", "--advertise-address", HostIP,
		"--service-cluster-ip-range", ServiceCIDR,
		"--client-ca-file", w+"/ca.crt",
		"--tls-cert-file", w+"/apiserver.crt", "--tls-private-key-file", w+"/apiserver.key",
		"--kubelet-client-certificate", w+"/admin.crt", "--kubelet-client-key", w+"/admin.key",
		"--service-account-key-file", w+"/sa.pub", "--service-account-signing-key-file", w+"/sa.key",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--authorization-mode", "Node,RBAC", "--allow-privileged=true",
		// The node's name resolves nowhere: reach kubelet (exec, logs,
		// port-forward) by its address.
		"--kubelet-preferred-address-types", "InternalIP",
		"--profiling=false", "--v=1")
	if err != nil {
		return err
	}
	if c.api, err = c.adminClient(); err != nil {
		return err
	}
	return c.waitFor(ctx, p, "kube-apiserver's /readyz", 180*time.Second, func() error {
		return httpOK(c.api, apiServer+"/readyz")
	})
}

// startControllers starts kube-controller-manager and kube-scheduler and
// waits for the default service account, which the controllers make.
func (c *Cluster) startControllers(ctx context.Context) error {
	w := c.o.Work
	cm, err := c.start("kube-controller-manager", c.o.Parts.Bin("kube-controller-manager"),
		"--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--secure-port", "0",
		"--service-account-private-key-file", w+"/sa.key", "--root-ca-file", w+"/ca.crt",
		"--profiling=false", "--v=1")
	if err != nil {
		return err
	}
	if _, err := c.start("kube-scheduler", c.o.Parts.Bin("kube-scheduler"),
		"--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--secure-port", "0",
		"--profiling=false", "--v=1"); err != nil {
		return err
	}
	return c.waitFor(ctx, cm, "the default service account", 180*time.Second, func() error {
		return c.get("/api/v1/namespaces/default/serviceaccounts/default", nil)
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
# Pods get no name servers: the node's would be this host's, outside the test.
resolvConf: ""
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
		return c.get("/api/v1/nodes/"+NodeName, nil)
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

// waitAPIServer waits until the guest reaches kube-apiserver on the host.
func (c *Cluster) waitAPIServer(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	for {
		err := httpOK(c.api, apiServer+"/readyz")
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver at %s not reachable from the guest: %w", apiServer, err)
		case <-time.After(time.Second):
		}
	}
}

func (c *Cluster) waitReady(ctx context.Context) error {
	return c.waitFor(ctx, c.kubelet, "node Ready", 180*time.Second, func() error {
		var node struct {
			Status struct {
				Conditions []struct{ Type, Status, Message string }
			}
		}
		if err := c.get("/api/v1/nodes/"+NodeName, &node); err != nil {
			return err
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == "Ready" && cond.Status == "True" {
				return nil
			} else if cond.Type == "Ready" {
				return fmt.Errorf("condition Ready is %s: %s", cond.Status, cond.Message)
			}
		}
		return errors.New("no Ready condition yet")
	})
}
