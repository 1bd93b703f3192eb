//go:build tools

package tools

import _ "github.com/inspektor-gadget/inspektor-gadget/cmd/ig"
