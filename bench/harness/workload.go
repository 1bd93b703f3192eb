package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Level is one step of the workload: bulk streams through a lossy input
// path plus connections whose SYNs are dropped.
type Level struct {
	Name    string `json:"name"`
	Streams int    `json:"streams"`  // parallel bulk transfers
	DropMod int    `json:"drop_mod"` // 1 in DropMod segments to the bulk port dropped at input
	SynRate int    `json:"syn_rate"` // new connections per second whose SYNs are dropped
}

// parseLevels reads "streams:dropmod:synrate,..." (e.g. "8:50:0,16:20:200").
func parseLevels(s string) ([]Level, error) {
	var out []Level
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		p := strings.Split(f, ":")
		if len(p) != 3 {
			return nil, fmt.Errorf("level %q: want streams:dropmod:synrate", f)
		}
		var n [3]int
		for i := range p {
			v, err := strconv.Atoi(p[i])
			if err != nil || v < 0 {
				return nil, fmt.Errorf("level %q: %q is not a count", f, p[i])
			}
			n[i] = v
		}
		if n[1] < 2 {
			return nil, fmt.Errorf("level %q: drop modulus must be at least 2", f)
		}
		out = append(out, Level{Name: f, Streams: n[0], DropMod: n[1], SynRate: n[2]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no levels in %q", s)
	}
	return out, nil
}

const (
	bulkPort = 9500
	synPort  = 9501
)

// Netns is a network namespace with only loopback, made for one window.
type Netns struct{ Name string }

var nsSeq int

func newNetns(lv Level) (*Netns, error) {
	nsSeq++
	ns := &Netns{Name: fmt.Sprintf("trbench-%d-%d", os.Getpid(), nsSeq)}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	rules := fmt.Sprintf(`table inet bench {
	chain in {
		type filter hook input priority 0;
		tcp dport %d tcp flags & (syn|ack) == syn drop
		tcp dport %d numgen random mod %d == 0 drop
	}
}
`, synPort, bulkPort, lv.DropMod)
	if err := ns.run(rules, "ip", "link", "set", "lo", "up"); err != nil {
		ns.Delete()
		return nil, err
	}
	if err := ns.run(rules, "nft", "-f", "-"); err != nil {
		ns.Delete()
		return nil, err
	}
	return ns, nil
}

func (ns *Netns) run(stdin string, name string, args ...string) error {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func (ns *Netns) Delete() {
	_ = exec.Command("ip", "netns", "del", ns.Name).Run()
}

// retransSegs reads Tcp RetransSegs of the namespace from /proc/net/snmp.
func (ns *Netns) retransSegs() (int64, error) {
	out, err := exec.Command("ip", "netns", "exec", ns.Name, "cat", "/proc/net/snmp").Output()
	if err != nil {
		return 0, err
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, "Tcp: ") {
			continue
		}
		f := strings.Fields(l)[1:]
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RetransSegs" && i < len(f) {
				return strconv.ParseInt(f[i], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no RetransSegs in /proc/net/snmp")
}

// runLoad runs the load generator in the namespace for d and returns its
// JSON summary.
func (ns *Netns) runLoad(loadgen string, lv Level, d time.Duration) (map[string]any, error) {
	args := []string{"netns", "exec", ns.Name, loadgen,
		"-listen", fmt.Sprintf("127.0.0.1:%d", bulkPort), "-syn-port", strconv.Itoa(synPort),
		"-streams", strconv.Itoa(lv.Streams), "-syn-rate", strconv.Itoa(lv.SynRate),
		"-duration", d.String()}
	cmd := exec.Command("ip", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("loadgen: %v: %s", err, stderr.String())
	}
	var sum map[string]any
	_ = json.Unmarshal(out, &sum)
	return sum, nil
}
