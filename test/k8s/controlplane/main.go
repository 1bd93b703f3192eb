// Command controlplane runs the host's side of make test-k8s's cluster
// (package cluster): etcd, kube-apiserver on the TAP address
// cluster.HostIP, kube-controller-manager and kube-scheduler, and the OCI
// registry (go-containerregistry's, in memory, plain HTTP) that the node's
// Inspektor Gadget pulls gadget images from, on cluster.HostIP:5000. It
// writes the certificates and kubeconfigs the guest's node uses into -work,
// then WORK/ready, and runs until SIGINT or SIGTERM.
//
//	controlplane -parts DIR -work DIR
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/google/go-containerregistry/pkg/registry"

	"trace_tcpretrans/test/k8s/cluster"
)

func main() {
	parts := flag.String("parts", "", "the cluster's parts (scripts/k8s.sh prints the directory)")
	work := flag.String("work", "", "a directory for certificates, kubeconfigs, logs and etcd's data")
	flag.Parse()
	if *parts == "" || *work == "" {
		fmt.Fprintln(os.Stderr, "controlplane: -parts and -work are required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*work, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "controlplane:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, "controlplane: "+f+"\n", a...) }
	c, err := cluster.StartControlPlane(ctx, cluster.Options{Parts: cluster.Parts(*parts), Work: *work, Logf: logf})
	if err != nil {
		fmt.Fprintln(os.Stderr, "controlplane:", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", cluster.HostIP+":5000")
	if err != nil {
		c.Stop()
		fmt.Fprintln(os.Stderr, "controlplane: the registry:", err)
		os.Exit(1)
	}
	go func() { _ = http.Serve(ln, registry.New(registry.Logger(log.New(io.Discard, "", 0)))) }()
	if err := os.WriteFile(filepath.Join(*work, "ready"), nil, 0o644); err != nil {
		c.Stop()
		fmt.Fprintln(os.Stderr, "controlplane:", err)
		os.Exit(1)
	}
	logf("ready: kubeconfig %s, registry %s", c.Kubeconfig, ln.Addr())
	<-ctx.Done()
	logf("stopping")
	c.Stop()
}
