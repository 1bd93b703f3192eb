module trace_tcpretrans/vm

go 1.25.0
