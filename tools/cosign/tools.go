//go:build tools

// Package tools pins cosign, which make sign and make keys use to sign the
// gadget image the way users verify it (bin/cosign).
package tools

import _ "github.com/sigstore/cosign/v2/cmd/cosign"
