module trace_tcpretrans/bench

go 1.26.0

require (
	github.com/cilium/ebpf v0.22.0
	github.com/stretchr/testify v1.12.1
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect

require (
	golang.org/x/sys v0.50.0 // indirect
	trace_tcpretrans/go v0.0.0
	trace_tcpretrans/test v0.0.0
)

replace trace_tcpretrans/test => ../test

replace trace_tcpretrans/go => ../go

replace trace_tcpretrans/vm => ../vm
