module trace_tcpretrans/test

go 1.26.0

require (
	github.com/cilium/ebpf v0.22.0
	github.com/stretchr/testify v1.12.1
	golang.org/x/sys v0.50.0
	trace_tcpretrans/vm v0.0.0
)

require (
	go.yaml.in/yaml/v3 v3.0.5
	trace_tcpretrans/go v0.0.0
)

replace trace_tcpretrans/vm => ../vm

replace trace_tcpretrans/go => ../go
