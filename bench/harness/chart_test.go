package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChartDataNativeOnly(t *testing.T) {
	d := chartDataOf(nativeResult(), nil)
	assert.Equal(t, "\"floor\" 100 NaN\n\"this-gadget\" 1500 NaN\n", d.Cost)
	assert.Empty(t, d.CPU)
	assert.Empty(t, d.Capture)
	assert.Empty(t, d.CapNames)
}

func TestChartDataWithVM(t *testing.T) {
	d := chartDataOf(nativeResult(), vmResult())
	assert.Equal(t, "\"floor\" 100 400\n\"this-gadget\" 1500 4000\n\"BCC\" NaN 2000\n", d.Cost, "bpftrace failed: no row")
	assert.Equal(t, "\"this-gadget\" 100\n\"BCC\" 50\n", d.CPU)
	assert.Equal(t, "10 100\n20 90\n\n\n10 100\n20 100\n", d.Capture)
	assert.Equal(t, []string{"this-gadget", "BCC"}, d.CapNames)
}

func TestChartPanels(t *testing.T) {
	tests := []struct {
		name  string
		vm    *Result
		files []string
	}{
		{"native only: the cost panel alone", nil, []string{"cost.dat"}},
		{"with the VM: three panels", vmResult(), []string{"cost.dat", "cpu.dat", "capture.dat"}},
		{"VM where no tracer ran: no empty panels", &Result{Phase: "vm", Kernel: "6.1.0-test", Tools: []ToolResult{{Name: "ours", Error: "boom"}}},
			[]string{"cost.dat"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nat := nativeResult()
			ps := chartPanels(nat, tt.vm, chartDataOf(nat, tt.vm))
			var files []string
			for _, p := range ps {
				files = append(files, p.file)
				assert.NotEmpty(t, p.data, p.file)
				assert.Contains(t, p.script, " $DATA ", p.file)
			}
			assert.Equal(t, tt.files, files)
		})
	}
	nat := &Result{Kernel: "x"}
	assert.Empty(t, chartPanels(nat, nil, chartDataOf(nat, nil)), "nothing measured: nothing to draw")
}

func TestChartScriptNativeOnly(t *testing.T) {
	nat := nativeResult()
	s := chartScript(nat, nil, chartPanels(nat, nil, chartDataOf(nat, nil)), "/out/bench.png", "/tmp/d")
	assert.Contains(t, s, "set terminal pngcairo size 600,600 ")
	assert.Contains(t, s, "set output \"/out/bench.png\"\n")
	assert.Contains(t, s, "set multiplot layout 1,1 title \"trace\\\\_tcpretrans benchmark — host 6.9.0-test, VM: not run\"\n")
	assert.Contains(t, s, "plot \"/tmp/d/cost.dat\" using 2:xtic(1) title \"native 6.9.0-test\"\n")
	assert.NotContains(t, s, "VM 6.")
	assert.NotContains(t, s, "cpu.dat")
	assert.NotContains(t, s, "notitle")
	assert.Equal(t, 1, strings.Count(s, "\nplot "))
	assert.True(t, strings.HasSuffix(s, "unset multiplot\n"))
}

func TestChartScriptWithVM(t *testing.T) {
	nat, vm := nativeResult(), vmResult()
	s := chartScript(nat, vm, chartPanels(nat, vm, chartDataOf(nat, vm)), "/out/bench.png", "/tmp/d")
	assert.Contains(t, s, "set terminal pngcairo size 1800,600 ")
	assert.Contains(t, s, "layout 1,3 title \"trace\\\\_tcpretrans benchmark — host 6.9.0-test, VM 6.1.0-test (QEMU TCG)\"\n")
	assert.Contains(t, s, "plot \"/tmp/d/cost.dat\" using 2:xtic(1) title \"native 6.9.0-test\", '' using 3 title \"VM 6.1.0-test\"\n")
	assert.Contains(t, s, "plot \"/tmp/d/cpu.dat\" using 2:xtic(1) title \"CPU\" lc rgb \"#4477aa\"\n")
	assert.Contains(t, s, "set ylabel \"% delivered\"\n")
	assert.Contains(t, s, "plot for [i=0:1] \"/tmp/d/capture.dat\" index i using 1:2 title word(\"this-gadget BCC\", i+1) lw 2 pt 7\n")
	require.Equal(t, 3, strings.Count(s, "\nplot "))
	assert.Less(t, strings.Index(s, "cost.dat"), strings.Index(s, "cpu.dat"))
	assert.Less(t, strings.Index(s, "cpu.dat"), strings.Index(s, "capture.dat"))
}

func TestChartLabel(t *testing.T) {
	assert.Equal(t, "this-gadget", chartLabel("ours"))
	assert.Equal(t, "compare-image", chartLabel("compare"))
	assert.Equal(t, "", chartLabel("ours-nodrain"))
}
