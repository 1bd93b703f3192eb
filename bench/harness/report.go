package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// reportInput is what the report is made of: the measurements and what
// run.sh says about the run.
type reportInput struct {
	Nat, VM      *Result // VM is nil when the VM part was not run
	CompareImage string
	Wall         int
	Command      string
	Commit       string
	Extra        []string // notes given with -note
}

// md collects the Markdown of the report.
type md struct{ strings.Builder }

func (m *md) p(format string, a ...any) { fmt.Fprintf(&m.Builder, format, a...) }

type notesFlag []string

func (n *notesFlag) String() string     { return strings.Join(*n, "; ") }
func (n *notesFlag) Set(v string) error { *n = append(*n, v); return nil }

func cmdReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	nativePath := fs.String("native", "", "native result")
	vmPath := fs.String("vm", "", "VM result")
	dir := fs.String("dir", "bench/results", "output directory")
	compareImage := fs.String("compare-image", "", "COMPARE_IMAGE as given")
	wall := fs.Int("wall", 0, "total seconds of make bench")
	command := fs.String("command", "make bench", "the command that ran")
	commit := fs.String("commit", "", "git commit of the gadget measured")
	var extra notesFlag
	fs.Var(&extra, "note", "a note about this run for the report (repeatable)")
	_ = fs.Parse(args)

	nat, err := loadResult(*nativePath)
	if err != nil {
		return fmt.Errorf("native result: %w", err)
	}
	vm, err := loadResult(*vmPath)
	if err == nil && !hasData(vm) {
		err = fmt.Errorf("%s holds no tracer", *vmPath)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: no VM result (%v); the report covers the native part only\n", err)
		vm = nil
	}
	in := reportInput{Nat: nat, VM: vm, CompareImage: *compareImage, Wall: *wall, Command: *command, Commit: *commit, Extra: extra}
	return writeOutputs(in, *dir)
}

// writeOutputs writes raw.json, REPORT.md and bench.png into dir.
func writeOutputs(in reportInput, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	raw := map[string]any{"native": in.Nat, "vm": in.VM, "compare_image": in.CompareImage, "command": in.Command,
		"wall_s": in.Wall, "commit": in.Commit, "notes": notesFlag(in.Extra)}
	b, _ := json.MarshalIndent(raw, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "raw.json"), b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "REPORT.md"), []byte(writeReport(in)), 0o644); err != nil {
		return err
	}
	return writeChart(in.Nat, in.VM, dir)
}

func loadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r *Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%s: no result (null)", path)
	}
	return r, nil
}

// hasData tells whether a phase measured any tracer (or tried to).
func hasData(r *Result) bool {
	return r != nil && len(r.Tools) > 0
}

// writeReport renders REPORT.md, one section after the other: the
// comparison image first when there is one, then where this gadget's cost
// is; the VM's sections are left out when it did not run.
func writeReport(in reportInput) string {
	var m md
	writeHeader(&m, in)
	writeCompare(&m, in.Nat, in.VM, in.CompareImage)
	writeWhere(&m, in.Nat, in.VM)
	writeGoals(&m, in.Nat, in.VM)
	writeRatios(&m, in.Nat, in.VM, in.CompareImage)
	writeCostSection(&m, in.Nat, in.VM)
	if in.VM != nil {
		writeEndToEnd(&m, in.VM)
		writeModes(&m, in.VM)
	}
	writeProgramsSection(&m, in.Nat, in.VM)
	m.p("## How to read this, and limits\n\n")
	for _, n := range append(in.Extra, notes(in.Nat, in.VM)...) {
		m.p("- %s\n", n)
	}
	return m.String()
}
