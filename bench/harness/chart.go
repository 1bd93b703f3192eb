package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"trace_tcpretrans/bench/harness/stats"
)

// chartData is gnuplot's input: one file per panel, empty when the run has
// nothing for that panel.
type chartData struct {
	Cost     string   // label, native ns/run, VM ns/run
	CPU      string   // label, CPU s per 10k events (VM)
	Capture  string   // per tracer a block of: rate, worst % delivered (VM)
	CapNames []string // the tracers of Capture's blocks, in order
}

// chartPanel is one plot of the multiplot, with the data file it reads.
type chartPanel struct {
	file, data, script string
}

// writeChart draws bench.png with gnuplot: BPF cost on the retransmission
// hook, CPU per 10k events and delivery against rate; only the panels the
// results have data for.
func writeChart(nat, vm *Result, dir string) error {
	panels := chartPanels(nat, vm, chartDataOf(nat, vm))
	if len(panels) == 0 {
		fmt.Fprintln(os.Stderr, "bench: nothing to chart; bench.png not written")
		return nil
	}
	tmp, err := os.MkdirTemp("", "bench-chart.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, p := range panels {
		if err := os.WriteFile(filepath.Join(tmp, p.file), []byte(p.data), 0o644); err != nil {
			return err
		}
	}
	sp := filepath.Join(tmp, "chart.gp")
	script := chartScript(nat, vm, panels, filepath.Join(dir, "bench.png"), tmp)
	if err := os.WriteFile(sp, []byte(script), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("gnuplot", sp).CombinedOutput(); err != nil {
		return fmt.Errorf("gnuplot: %v: %s", err, out)
	}
	return nil
}

func chartDataOf(nat, vm *Result) chartData {
	d := chartData{Cost: costData(nat, vm)}
	if vm == nil {
		return d
	}
	var cpu, capt strings.Builder
	for _, n := range toolOrder {
		t := findTool(vm, n)
		if t == nil || t.Error != "" || len(t.Windows) == 0 {
			continue
		}
		fmt.Fprintf(&cpu, "\"%s\" %s\n", chartLabel(n), stats.Plain(cpuPer10k(t.Windows)))
		// one data block per tracer, separated by two blank lines
		if len(d.CapNames) > 0 {
			capt.WriteString("\n\n")
		}
		d.CapNames = append(d.CapNames, chartLabel(n))
		for _, lv := range vm.Levels {
			if ws := byLevel(*t, lv.Name); len(ws) > 0 {
				fmt.Fprintf(&capt, "%s %s\n", stats.Plain(perWindow(ws, genRate).Med), stats.Plain(perWindow(ws, percent(capture)).Min))
			}
		}
	}
	d.CPU, d.Capture = cpu.String(), capt.String()
	return d
}

// costData: the median ns/run on tcp_retransmit_skb of the floor and each
// tracer, natively and in the VM; tracers measured in neither are left out.
func costData(nat, vm *Result) string {
	val := func(r *Result, name string) string {
		if r == nil {
			return "NaN"
		}
		if name == "floor" {
			t := findTool(r, "ours")
			if t == nil {
				return "NaN"
			}
			_, f, _, _ := hookCosts(t, "retransmit_skb")
			return stats.Plain(f.Med)
		}
		return stats.Plain(toolCost(findTool(r, name)).Med)
	}
	var b strings.Builder
	for _, n := range []string{"floor", "ours", "compare", "bcc", "bpftrace"} {
		a, v := val(nat, n), val(vm, n)
		if a == "NaN" && v == "NaN" {
			continue // a tracer that did not run (e.g. no COMPARE_IMAGE)
		}
		fmt.Fprintf(&b, "\"%s\" %s %s\n", chartLabel(n), a, v)
	}
	return b.String()
}

// chartPanels keeps the panels that have data; their scripts read $DATA,
// replaced with their data file in chartScript.
func chartPanels(nat, vm *Result, d chartData) []chartPanel {
	var ps []chartPanel
	if d.Cost != "" {
		plot := fmt.Sprintf("plot $DATA using 2:xtic(1) title \"native %s\"", nat.Kernel)
		if vm != nil {
			plot += fmt.Sprintf(", '' using 3 title \"VM %s\"", vm.Kernel)
		}
		ps = append(ps, chartPanel{"cost.dat", d.Cost, `set style data histograms
set logscale y
set key top left
set xtics rotate by -25
set title "BPF ns per run on tcp\\_retransmit\\_skb (median, log)"
set ylabel "ns / run"
` + plot + "\n"})
	}
	if d.CPU != "" {
		ps = append(ps, chartPanel{"cpu.dat", d.CPU, `unset logscale y
set key off
set style data histograms
set xtics rotate by -25
set title "tracer CPU seconds per 10k events (VM, lower is better)"
set ylabel "CPU s / 10k events"
set yrange [0:*]
plot $DATA using 2:xtic(1) title "CPU" lc rgb "#4477aa"
`})
	}
	if len(d.CapNames) > 0 {
		ps = append(ps, chartPanel{"capture.dat", d.Capture, fmt.Sprintf(`unset logscale y
set style data linespoints
set xtics norotate
set key bottom left
set title "events delivered vs retransmissions/s (VM, worst run)"
set xlabel "retransmissions / s generated"
set ylabel "%% delivered"
set yrange [0:110]
set logscale x
plot for [i=0:%d] $DATA index i using 1:2 title word(%q, i+1) lw 2 pt 7
`, len(d.CapNames)-1, strings.Join(d.CapNames, " "))})
	}
	return ps
}

// chartScript is the gnuplot script: one 600-pixel-wide panel per entry,
// reading its data from dir.
func chartScript(nat, vm *Result, panels []chartPanel, png, dir string) string {
	vmTitle := "VM: not run"
	if vm != nil {
		vmTitle = "VM " + vm.Kernel + " (QEMU TCG)"
	}
	var g strings.Builder
	fmt.Fprintf(&g, `set terminal pngcairo size %d,600 font "DejaVu Sans,11"
set output %q
set multiplot layout 1,%d title "trace\\_tcpretrans benchmark — host %s, %s"
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
`, 600*len(panels), png, len(panels), nat.Kernel, vmTitle)
	for _, p := range panels {
		g.WriteString(strings.ReplaceAll(p.script, "$DATA", fmt.Sprintf("%q", filepath.Join(dir, p.file))))
	}
	g.WriteString("unset multiplot\n")
	return g.String()
}
