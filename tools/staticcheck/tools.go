//go:build tools

// Package tools pins staticcheck: `go build honnef.co/go/tools/cmd/staticcheck`
// in this directory builds the version of go.mod.
package tools

import _ "honnef.co/go/tools/cmd/staticcheck"
