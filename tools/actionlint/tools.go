//go:build tools

// Package tools pins actionlint, which make test-unit runs on the release
// workflow (bin/actionlint).
package tools

import _ "github.com/rhysd/actionlint/cmd/actionlint"
