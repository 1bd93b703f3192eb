package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"trace_tcpretrans/go/contract"
)

// Tool is a tracer under test.
type Tool interface {
	Start() error
	Counts() Counts
	Pid() int // 0 for the in-process loader
	Stop() string
	// HookOf tells which hook a program of this tool (seen by bpftool) is on.
	HookOf(p ProgStat) string
}

// ---- the gadget's object loaded in this process (native runs) ----

type objectTool struct {
	name, path string
	drain      bool
	batched    bool
	config     *contract.Config // the parameters' map entry; nil: the defaults
	obj        *Object
}

func (t *objectTool) Start() (err error) {
	t.obj, err = loadObjectMode(t.name, t.path, t.drain, t.batched, t.config)
	return err
}
func (t *objectTool) Counts() Counts { return t.obj.snapshot() }
func (t *objectTool) Pid() int       { return 0 }
func (t *objectTool) Stop() string {
	if t.obj != nil {
		t.obj.Close()
	}
	return ""
}
func (t *objectTool) HookOf(p ProgStat) string {
	if h, ok := t.obj.IDs[p.ID]; ok {
		return h
	}
	return ""
}

// ---- external tools: ig, BCC, bpftrace ----

type procTool struct {
	label     string
	argv      []string
	env       []string
	ready     func(line string) bool // a line that says the tool is attached
	classify  func(line string, c *Counts)
	lostRe    *regexp.Regexp
	progNames map[string]string // program name (as bpftool shows it) -> hook
	waitName  string            // ready once bpftool shows a program of this name
	scrapeURL string            // /metrics, read before stopping; a summary goes to the tail

	cmd     *exec.Cmd
	mu      sync.Mutex
	counts  Counts
	readyCh chan struct{}
	once    sync.Once
	done    chan struct{}
	tail    []string
}

func (t *procTool) Pid() int { return t.cmd.Process.Pid }

func (t *procTool) Counts() Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts
}

func (t *procTool) HookOf(p ProgStat) string {
	if h, ok := t.progNames[p.Name]; ok {
		return h
	}
	n := strings.ToLower(p.Name)
	switch {
	case strings.Contains(n, "synack"):
		return "retransmit_synack"
	case strings.Contains(n, "tlp") || strings.Contains(n, "loss"):
		return "tlp"
	case strings.Contains(n, "retrans") || strings.HasPrefix(n, "tracepoint__tcp"):
		return "retransmit_skb"
	}
	return ""
}

func (t *procTool) scan(r io.Reader, isErr bool) {
	sc := bufio.NewScanner(r)
	// A line of --count holds every flow of an interval.
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		if t.ready != nil && t.ready(line) {
			t.once.Do(func() { close(t.readyCh) })
		}
		t.mu.Lock()
		if m := t.lostRe.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			t.counts.Lost += n
		} else if !isErr {
			t.classify(line, &t.counts)
		}
		if isErr || !(strings.HasPrefix(line, "{") || strings.HasPrefix(line, "[")) {
			t.tail = append(t.tail, line)
			if len(t.tail) > 40 {
				t.tail = t.tail[1:]
			}
		}
		t.mu.Unlock()
	}
}

func (t *procTool) Start() error {
	t.readyCh = make(chan struct{})
	t.done = make(chan struct{})
	t.cmd = exec.Command(t.argv[0], t.argv[1:]...)
	t.cmd.Env = append(os.Environ(), t.env...)
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	so, err := t.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	se, err := t.cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := t.cmd.Start(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); t.scan(so, false) }()
	go func() { defer wg.Done(); t.scan(se, true) }()
	go func() { wg.Wait(); _ = t.cmd.Wait(); close(t.done) }()
	if t.waitName != "" {
		t.pollPrograms(t.waitName)
	}
	select {
	case <-t.readyCh:
	case <-t.done:
		return fmt.Errorf("%s exited before attaching: %s", t.label, strings.Join(t.tail, "\n"))
	case <-time.After(10 * time.Minute):
		t.Stop()
		return fmt.Errorf("%s did not attach within 10 minutes", t.label)
	}
	time.Sleep(2 * time.Second)
	return nil
}

// Stop interrupts the tool and returns the last lines of its output.
func (t *procTool) Stop() string {
	if t.cmd == nil || t.cmd.Process == nil {
		return ""
	}
	if t.scrapeURL != "" {
		t.scrape()
	}
	_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-t.done:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
		<-t.done
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.tail, "\n")
}

var (
	reType = regexp.MustCompile(`"type":\s*"([A-Z_]+)"`)
	reSegs = regexp.MustCompile(`"segs":\s*(\d+)`)
	reTime = regexp.MustCompile(`^\d\d:\d\d:\d\d\s`)
)

// igTool runs `ig run IMAGE --host -o json` (with extra flags of ig or
// the gadget); progNames maps the image's program names (from its object)
// to hooks, and ready is seen on bpftool.
func igTool(ig, image string, progNames map[string]string, extra ...string) *procTool {
	t := &procTool{
		label:     "ig run " + image,
		argv:      append(append([]string{ig, "run", image, "--verify-image=false", "--host"}, extra...), "-o", "json"),
		lostRe:    regexp.MustCompile(`lost (\d+) samples`),
		progNames: progNames,
	}
	t.classify = classifyIG
	return t
}

// igWakeEachTool is igTool with --max-delay 0: ig is woken for every
// event that finds it waiting, as before the gadget batched wake-ups.
func igWakeEachTool(ig, image string, progNames map[string]string) *procTool {
	t := igTool(ig, image, progNames, "--max-delay", "0")
	t.label += " --max-delay 0"
	return t
}

// metricsAddr is where `ours + metrics` serves Prometheus metrics.
const metricsAddr = "127.0.0.1:2224"

// metricsFlags turn on the gadget's metrics through ig's otel-metrics
// operator; events are printed as without them.
var metricsFlags = []string{"--annotate", "tcpretrans:metrics.collect=true", "--otel-metrics-listen",
	"--otel-metrics-listen-address", metricsAddr, "--otel-metrics-name", "tcpretrans:tcpretrans"}

// igMetricsTool is igTool with the metrics flags; its events are counted
// as igTool's, and /metrics is read once before it stops (for the tail).
func igMetricsTool(ig, image string, progNames map[string]string) *procTool {
	t := igTool(ig, image, progNames, metricsFlags...)
	t.label += " (metrics)"
	t.scrapeURL = "http://" + metricsAddr + "/metrics"
	return t
}

// igCountTool runs the gadget's count mode: no events, one JSON array of
// per-flow counters every second (--map-fetch-interval 1s; by default the
// gadget prints only at stop) and at stop.
func igCountTool(ig, image string, progNames map[string]string) *procTool {
	t := igTool(ig, image, progNames, "--count", "--map-fetch-interval", "1s")
	t.label += " --count"
	t.classify = classifyIGCount
	return t
}

// scrape reads /metrics and puts one line summing the gadget's counters
// into the tail.
func (t *procTool) scrape() {
	c := http.Client{Timeout: 10 * time.Second}
	var line string
	resp, err := c.Get(t.scrapeURL)
	if err != nil {
		line = metricsPrefix + "not read: " + err.Error()
	} else {
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		line = metricsPrefix + metricsSummary(string(b))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tail = append(t.tail, line)
}

// metricsPrefix starts the tail's line about /metrics.
const metricsPrefix = "metrics before stop: "

// metricsSummary sums the samples of each tcp_retransmit* counter of a
// Prometheus text exposition over its labels: "name=sum name=sum".
func metricsSummary(text string) string {
	sums := map[string]float64{}
	var names []string
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, "tcp_retransmit") {
			continue
		}
		f := strings.Fields(l)
		name, _, _ := strings.Cut(f[0], "{")
		if i := strings.LastIndexByte(l, '}'); i >= 0 {
			f = strings.Fields(l[i+1:])
		} else {
			f = f[1:]
		}
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		if _, ok := sums[name]; !ok {
			names = append(names, name)
		}
		sums[name] += v
	}
	if len(names) == 0 {
		return "no tcp_retransmit sample"
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		out = append(out, fmt.Sprintf("%s=%.0f", n, sums[n]))
	}
	return strings.Join(out, " ")
}

// countRow is the part of a row of --count that the bench counts.
type countRow struct {
	Retrans   int64 `json:"retrans"`
	Segs      int64 `json:"segs"`
	Loss      int64 `json:"loss"`
	Failed    int64 `json:"failed"`
	SynackRTO int64 `json:"synack_rto"`
	DupSyn    int64 `json:"dup_syn"`
}

// classifyIGCount counts a line of `ig run --count -o json`, a JSON array
// of flows: its events are retrans+loss+failed summed over the rows, as
// many as the event stream would have printed; retrans includes SYNACK
// events (reasons SYNACK_RTO and DUP_SYN), counted apart as the event
// stream's are.
func classifyIGCount(line string, c *Counts) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "[") {
		return
	}
	var rows []countRow
	if json.Unmarshal([]byte(line), &rows) != nil {
		return
	}
	for _, r := range rows {
		syn := r.SynackRTO + r.DupSyn
		c.Events += r.Retrans + r.Loss + r.Failed
		c.Retrans += r.Retrans - syn
		c.Synack += syn
		c.RetransSegs += r.Segs
		c.Loss += r.Loss
	}
}

// classifyIG counts a line of `ig run -o json`: a JSON event of this
// gadget (RETRANS, LOSS or SYNACK; without a type, a retransmission).
func classifyIG(line string, c *Counts) {
	if !strings.HasPrefix(line, "{") {
		return
	}
	c.Events++
	m := reType.FindStringSubmatch(line)
	switch {
	case m == nil || m[1] == "RETRANS":
		c.Retrans++
		if s := reSegs.FindStringSubmatch(line); s != nil {
			n, _ := strconv.ParseInt(s[1], 10, 64)
			c.RetransSegs += n
		}
	case m[1] == "LOSS":
		c.Loss++
	case m[1] == "SYNACK":
		c.Synack++
	}
}

// waitPrograms makes an ig tool ready once its program on the
// retransmission hook is in the kernel.
func (t *procTool) waitPrograms(name string) { t.waitName = name }

// guideScript is the guide fixture, relative to the repository's root where
// the bench runs; its gadget_attached is the one attach check of the demo,
// the integration tests and the bench.
const guideScript = "scripts/guide.sh"

// gadgetAttached runs the fixture's check for a program name.
func gadgetAttached(name string) bool {
	return exec.Command("bash", "-c", ". "+guideScript+` && gadget_attached "$0"`, name).Run() == nil
}

func (t *procTool) pollPrograms(name string) {
	go func() {
		for {
			select {
			case <-t.done:
				return
			case <-time.After(300 * time.Millisecond):
			}
			if gadgetAttached(name) {
				t.once.Do(func() { close(t.readyCh) })
				return
			}
		}
	}()
}

func bccTool(bin, ksrc string) *procTool {
	t := &procTool{
		label:  "BCC tcpretrans",
		argv:   []string{bin, "-l"},
		env:    []string{"PYTHONUNBUFFERED=1", "BCC_KERNEL_SOURCE=" + ksrc},
		ready:  func(l string) bool { return strings.HasPrefix(l, "Tracing retransmits") },
		lostRe: regexp.MustCompile(`[Ll]ost (\d+) samples`),
	}
	t.classify = classifyBCC
	return t
}

// classifyBCC counts an event line of tcpretrans-bpfcc -l: "L>" is a tail
// loss probe, anything else a retransmission.
func classifyBCC(line string, c *Counts) {
	if !reTime.MatchString(line) {
		return
	}
	c.Events++
	f := strings.Fields(line)
	if len(f) >= 5 && f[4] == "L>" {
		c.Loss++
	} else {
		c.Retrans++
	}
}

func bpftraceTool(bin, script string) *procTool {
	t := &procTool{
		label:  "bpftrace tcpretrans.bt",
		argv:   []string{bin, "-B", "line", script},
		env:    []string{"BPFTRACE_STRLEN=64"},
		ready:  func(l string) bool { return strings.HasPrefix(l, "Tracing tcp retransmits") },
		lostRe: regexp.MustCompile(`[Ll]ost (\d+) events`),
	}
	t.classify = classifyBpftrace
	return t
}

// classifyBpftrace counts an event line of tcpretrans.bt, always a
// retransmission.
func classifyBpftrace(line string, c *Counts) {
	if reTime.MatchString(line) {
		c.Events++
		c.Retrans++
	}
}

// procCPU returns utime+stime of a process in seconds.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	return statCPU(string(b))
}

// statCPU is utime+stime in seconds from the text of /proc/PID/stat.
func statCPU(s string) float64 {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ is 100 on Linux
}

// procHWM returns the peak resident set size (VmHWM) in KiB.
func procHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	return statusHWM(string(b))
}

// statusHWM is VmHWM in KiB from the text of /proc/PID/status, 0 if absent.
func statusHWM(s string) int64 {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			if f := strings.Fields(l); len(f) > 1 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return 0
}
