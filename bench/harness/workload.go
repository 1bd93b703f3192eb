package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"trace_tcpretrans/test/gadgettest"
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
type Netns struct{ *gadgettest.Netns }

// newNetns makes the window's namespace with the level's drop rules.
func newNetns(lv Level) (*Netns, error) {
	n, err := gadgettest.NewNetns("trbench")
	if err != nil {
		return nil, err
	}
	ns := &Netns{n}
	if err := ns.Nft(levelRules(lv)); err != nil {
		ns.Delete()
		return nil, err
	}
	return ns, nil
}

// levelRules drops the SYNs to synPort and 1 in DropMod segments to
// bulkPort, at input.
func levelRules(lv Level) string {
	return fmt.Sprintf(`table inet bench {
	chain in {
		type filter hook input priority 0;
		tcp dport %d tcp flags & (syn|ack) == syn drop
		tcp dport %d numgen random mod %d == 0 drop
	}
}
`, synPort, bulkPort, lv.DropMod)
}

// Delete removes the namespace.
func (ns *Netns) Delete() {
	if err := ns.Close(); err != nil {
		logf("%v", err)
	}
}

// retransSegs reads Tcp RetransSegs of the namespace.
func (ns *Netns) retransSegs() (int64, error) {
	return ns.SNMP("Tcp", "RetransSegs")
}

// runLoad runs the load generator in the namespace for d and returns its
// JSON summary.
func (ns *Netns) runLoad(loadgen string, lv Level, d time.Duration) (map[string]any, error) {
	cmd := ns.Command(loadgen,
		"-listen", fmt.Sprintf("127.0.0.1:%d", bulkPort), "-syn-port", strconv.Itoa(synPort),
		"-streams", strconv.Itoa(lv.Streams), "-syn-rate", strconv.Itoa(lv.SynRate),
		"-duration", d.String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("loadgen: %v: %s", err, stderr.String())
	}
	var sum map[string]any
	if err := json.Unmarshal(out, &sum); err != nil {
		return nil, fmt.Errorf("loadgen's summary %q: %w", out, err)
	}
	return sum, nil
}
