//go:build tools

// Package tools pins Inspektor Gadget's commands: ig, and for make test-k8s
// kubectl-gadget and the DaemonSet's gadgettracermanager and cleanup.
package tools

import (
	_ "github.com/inspektor-gadget/inspektor-gadget/cmd/ig"
	_ "github.com/inspektor-gadget/inspektor-gadget/cmd/kubectl-gadget"
	_ "github.com/inspektor-gadget/inspektor-gadget/gadget-container/cleanup"
	_ "github.com/inspektor-gadget/inspektor-gadget/gadget-container/gadgettracermanager"
)
