package main

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCost(t *testing.T) {
	progs := []ProgStat{
		prog("a", "tracepoint", "retransmit_skb", 1000, 10),
		prog("b", "tracepoint", "retransmit_skb", 4000, 30),
		prog("c", "tracepoint", "timer", 7, 5),
	}
	tests := []struct {
		hook string
		ns   float64
		cnt  int64
	}{
		{"retransmit_skb", (10000 + 120000) / 40.0, 40},
		{"timer", 7, 5},
	}
	for _, tt := range tests {
		ns, cnt := cost(progs, tt.hook)
		assert.Equal(t, tt.ns, ns, tt.hook)
		assert.Equal(t, tt.cnt, cnt, tt.hook)
	}
	ns, cnt := cost(progs, "tlp")
	assert.True(t, math.IsNaN(ns))
	assert.Zero(t, cnt)
}

func TestCaptureCoverage(t *testing.T) {
	tests := []struct {
		name               string
		w                  Window
		capture, coverage  float64
		toolRuns           int64
		ok                 bool
		segsPercent, genRt float64
	}{
		{"all delivered", window("l", 10, 1, 1, 100, 0, 0), 1, 1, 100, true, 100, 10},
		{"90 of 100 delivered, 10 lost", window("l", 5, 1, 1, 90, 10, 0), 0.9, 1, 100, false, 90, 20},
		{"99 delivered is loss-free", window("l", 10, 1, 1, 99, 0, 0), 0.99, 1, 100, true, 99, 10},
		{"delivered but lost reported", window("l", 10, 1, 1, 100, 1, 0), 1, 1, 100, false, 100, 10},
		{"the tool saw 80 of 100 hits", func() Window {
			w := window("l", 10, 1, 1, 80, 0, 0)
			w.Tool[0].RunCnt = 80
			return w
		}(), 1, 0.8, 80, true, 80, 10},
		{"no program of the tool: against the tracepoint", func() Window {
			w := window("l", 10, 1, 1, 50, 0, 0)
			w.Tool = nil
			return w
		}(), 0.5, math.NaN(), 0, false, 50, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.capture, capture(tt.w), 1e-12)
			if math.IsNaN(tt.coverage) {
				assert.True(t, math.IsNaN(coverage(tt.w)))
			} else {
				assert.InDelta(t, tt.coverage, coverage(tt.w), 1e-12)
			}
			assert.Equal(t, tt.toolRuns, toolRuns(tt.w))
			assert.Equal(t, tt.ok, windowOK(tt.w))
			assert.InDelta(t, tt.segsPercent, segsPercent(tt.w), 1e-9)
			assert.InDelta(t, tt.genRt, genRate(tt.w), 1e-12)
		})
	}
}

func TestNoHits(t *testing.T) {
	w := Window{Hooks: map[string]int64{}, Error: ""}
	assert.True(t, math.IsNaN(capture(w)))
	assert.True(t, math.IsNaN(coverage(w)))
	assert.True(t, math.IsNaN(segsPercent(w)))
	assert.False(t, windowOK(w), "a run with no retransmission is not loss-free")
	w = window("l", 10, 1, 1, 100, 0, 0)
	w.Error = "loadgen: exit status 1"
	assert.False(t, windowOK(w), "a failed run is not loss-free")
}

func TestGenRateWithoutLoadgenDuration(t *testing.T) {
	w := window("l", 10, 1, 1, 100, 0, 0)
	w.Loadgen = nil
	w.Seconds = 25
	assert.Equal(t, 4.0, genRate(w))
}

func TestCPUPer10k(t *testing.T) {
	ws := []Window{window("a", 10, 1, 1, 100, 0, 1.0), window("b", 10, 1, 1, 300, 0, 1.0)}
	assert.InDelta(t, 50.0, cpuPer10k(ws), 1e-9) // 2 s for 400 events
	assert.True(t, math.IsNaN(cpuPer10k(nil)))
	assert.True(t, math.IsNaN(cpuPer10k([]Window{window("a", 10, 1, 1, 0, 0, 1.0)})))
}

func TestHookCosts(t *testing.T) {
	ours := findTool(nativeResult(), "ours")
	require.NotNil(t, ours)
	tool, floor, ratio, runs := hookCosts(ours, "retransmit_skb")
	assert.Equal(t, 1500.0, tool.Med)
	assert.Equal(t, 1000.0, tool.Min)
	assert.Equal(t, 2000.0, tool.Max)
	assert.Equal(t, 100.0, floor.Med)
	assert.Equal(t, [3]float64{10, 15, 20}, [3]float64{ratio.Min, ratio.Med, ratio.Max})
	assert.Equal(t, int64(200), runs)

	tool, floor, ratio, runs = hookCosts(ours, "timer")
	assert.Equal(t, 1, tool.N, "only the first run has the timer program")
	assert.Equal(t, 500.0, tool.Med)
	assert.Equal(t, 50.0, floor.Med)
	assert.Equal(t, 10.0, ratio.Med)
	assert.Equal(t, int64(10), runs)

	tool, _, _, runs = hookCosts(nil, "retransmit_skb")
	assert.Zero(t, tool.N)
	assert.Zero(t, runs)
}

func TestSustained(t *testing.T) {
	vm := vmResult()
	tests := []struct {
		tool  string
		level string
		rate  float64
	}{
		{"ours", "8:50:0", 10},
		{"bcc", "16:10:400", 20},
		{"bpftrace", "", math.NaN()},
	}
	for _, tt := range tests {
		lv, rate := sustained(findTool(vm, tt.tool), vm.Levels)
		assert.Equal(t, tt.level, lv, tt.tool)
		if math.IsNaN(tt.rate) {
			assert.True(t, math.IsNaN(rate), tt.tool)
		} else {
			assert.Equal(t, tt.rate, rate, tt.tool)
		}
	}
}

func TestLookups(t *testing.T) {
	vm := vmResult()
	assert.Equal(t, "BCC tcpretrans (bpfcc-tools)", findTool(vm, "bcc").Label)
	assert.Nil(t, findTool(vm, "compare"))
	assert.Nil(t, findTool(nil, "ours"))
	assert.Len(t, byLevel(*findTool(vm, "ours"), "16:10:400"), 1)
	assert.Empty(t, byLevel(*findTool(vm, "ours"), "1:2:3"))
	assert.Nil(t, toolWindows(nil))
	assert.Len(t, toolWindows(findTool(vm, "bcc")), 2)
	assert.Equal(t, 1, levelIndex(vm.Levels, "16:10:400"))
	assert.Equal(t, -1, levelIndex(vm.Levels, ""))
	assert.Equal(t, "8:50:0", levelName(vm.Levels, 0))
	assert.Equal(t, "", levelName(vm.Levels, -1))
	assert.Equal(t, "", levelName(vm.Levels, 2))
	ours := *findTool(nativeResult(), "ours")
	assert.True(t, hasHook(ours, "timer"))
	assert.True(t, hasHook(ours, "retransmit_skb"))
	assert.False(t, hasHook(ours, "tlp"))
}
