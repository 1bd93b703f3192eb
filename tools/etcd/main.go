// Command etcd is etcd's server, built from its module at the version pinned
// in go.mod, for the single-node cluster of make test-k8s.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
