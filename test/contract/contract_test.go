// Package contract checks go/contract, the names and layouts the Go side of
// the gadget relies on, against what the gadget really is: the BPF object
// that goes into the image (its BTF) and gadget.yaml. It needs no root: it
// reads files only.
package contract

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"trace_tcpretrans/go/contract"
	"trace_tcpretrans/test/gadgettest"
)

var (
	objectPath  = flag.String("object", "../../.build/amd64.bpf.o", "BPF object built by 'make build'")
	gadgetYAML  = flag.String("gadget-yaml", "../../gadget.yaml", "the gadget's metadata")
	makefile    = flag.String("makefile", "../../Makefile", "the Makefile, which holds the commands' defaults")
	artifactHub = flag.String("artifacthub", "../../artifacthub-pkg.yml", "Artifact Hub metadata")
	readmePath  = flag.String("readme", "../../README.md", "the README")
)

func loadSpec(t *testing.T) *ebpf.CollectionSpec {
	t.Helper()
	spec, err := gadgettest.LoadSpec(*objectPath)
	require.NoError(t, err)
	return spec
}

// configMismatch compares struct config of the object with
// contract.Config: member names, order, offsets and sizes, and the bytes
// each side writes for the same values.
func configMismatch(st *btf.Struct) error {
	goType := reflect.TypeOf(contract.Config{})
	if len(st.Members) != goType.NumField() {
		return fmt.Errorf("struct config has %d members, contract.Config %d fields", len(st.Members), goType.NumField())
	}
	off := 0
	for i, m := range st.Members {
		f := goType.Field(i)
		size, err := btf.Sizeof(m.Type)
		if err != nil {
			return fmt.Errorf("member %s: %w", m.Name, err)
		}
		goSize := int(f.Type.Size())
		if strings.ReplaceAll(m.Name, "_", "") != strings.ToLower(f.Name) || int(m.Offset.Bytes()) != off || size != goSize {
			return fmt.Errorf("struct config member %d is %s at %d (%d bytes); contract.Config has %s at %d (%d bytes)",
				i, m.Name, m.Offset.Bytes(), size, f.Name, off, goSize)
		}
		off += goSize // binary.Write packs fields without padding
	}
	if int(st.Size) != off {
		return fmt.Errorf("struct config has %d bytes, contract.Config encodes %d", st.Size, off)
	}
	// Distinct values in every member, so that a swap shows.
	c := contract.Config{Ready: 1, Loss: 2, Synack: 3, Failed: 4, Family: 0x06050400, Count: 0x0a090807, MaxDelayUs: 0x0e0d0c0b}
	byName, err := gadgettest.EncodeByName(st, c.Members())
	if err != nil {
		return err
	}
	if !bytes.Equal(byName, c.Bytes()) {
		return fmt.Errorf("contract.Config encodes %x, the object's layout wants %x", c.Bytes(), byName)
	}
	if names := slices.Sorted(maps.Keys(c.Members())); len(names) != len(st.Members) {
		return fmt.Errorf("contract.Config.Members names %v, struct config has %d members", names, len(st.Members))
	}
	return nil
}

// The bytes the wasm operator writes are the ones the BPF programs read.
func TestConfigLayout(t *testing.T) {
	spec := loadSpec(t)
	st, err := gadgettest.ConfigLayout(spec)
	require.NoError(t, err)
	assert.Equal(t, contract.ConfigStruct, st.Name)
	require.NoError(t, configMismatch(st))

	def := contract.DefaultConfig()
	var got contract.Config
	require.NoError(t, binary.Read(bytes.NewReader(def.Bytes()), binary.NativeEndian, &got))
	assert.Equal(t, def, got)
}

// The check above fails for each way struct config could change without
// contract.Config.
func TestConfigMismatchCaught(t *testing.T) {
	spec := loadSpec(t)
	orig, err := gadgettest.ConfigLayout(spec)
	require.NoError(t, err)
	u8, u16, u32 := &btf.Int{Name: "__u8", Size: 1}, &btf.Int{Name: "__u16", Size: 2}, &btf.Int{Name: "__u32", Size: 4}
	changes := map[string]func(*btf.Struct){
		"member added": func(s *btf.Struct) {
			s.Members = append(s.Members, btf.Member{Name: "port", Type: u32, Offset: btf.Bits(s.Size * 8)})
			s.Size += 4
		},
		"member renamed": func(s *btf.Struct) { s.Members[1].Name = "probes" },
		"members swapped": func(s *btf.Struct) {
			s.Members[1].Name, s.Members[2].Name = s.Members[2].Name, s.Members[1].Name
		},
		"member widened": func(s *btf.Struct) {
			s.Members[3].Type = u16
			s.Members[4].Offset += 8
			s.Size += 1
		},
		"member moved": func(s *btf.Struct) { s.Members[4].Offset += 32; s.Size += 4 },
		"family narrowed": func(s *btf.Struct) {
			s.Members[4].Type = u8
			s.Size -= 3
		},
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			st := btf.Copy(orig).(*btf.Struct)
			change(st)
			assert.Error(t, configMismatch(st))
		})
	}
}

// Every program and map the Go side names exists, and no program is
// unknown to it.
func TestObjectNames(t *testing.T) {
	spec := loadSpec(t)
	assert.ElementsMatch(t, contract.Programs, slices.Collect(maps.Keys(spec.Programs)), "programs of the object")
	for _, m := range []string{contract.EventsMap, contract.ConfigMap} {
		assert.Contains(t, spec.Maps, m)
	}
	assert.Equal(t, ebpf.RingBuf, spec.Maps[contract.EventsMap].Type)
	assert.Equal(t, "kprobe/tcp_send_loss_probe", spec.Programs[contract.ProgLossKprobe].SectionName)
	assert.Equal(t, "tracepoint/timer/timer_expire_entry", spec.Programs[contract.ProgLossTimer].SectionName)
	assert.Equal(t, "tp_btf/tcp_retransmit_skb", spec.Programs[contract.ProgRetransmit].SectionName)
	assert.Equal(t, "tp_btf/tcp_retransmit_synack", spec.Programs[contract.ProgSynack].SectionName)
	assert.Equal(t, contract.WakeupSection, spec.Programs[contract.ProgWakeup].SectionName)
	assert.Equal(t, ebpf.PerfEvent, spec.Programs[contract.ProgWakeup].Type)
	assert.EqualValues(t, contract.EventsSize, spec.Maps[contract.EventsMap].MaxEntries)
}

// The count mode's map is what ig's map iterator fetches (a hash map of
// structs) and what the wasm operator's warning says; its drop counter is
// one __u64.
func TestFlowMaps(t *testing.T) {
	spec := loadSpec(t)
	flows, ok := spec.Maps[contract.FlowsMap]
	require.True(t, ok, "map %s", contract.FlowsMap)
	assert.Equal(t, ebpf.Hash, flows.Type)
	assert.EqualValues(t, contract.MaxFlows, flows.MaxEntries)
	require.IsType(t, &btf.Struct{}, flows.Key)
	require.IsType(t, &btf.Struct{}, flows.Value)
	assert.Equal(t, contract.FlowKeyStruct, flows.Key.TypeName())
	assert.Equal(t, contract.FlowCountStruct, flows.Value.TypeName())
	dropped, ok := spec.Maps[contract.FlowsDroppedMap]
	require.True(t, ok, "map %s", contract.FlowsDroppedMap)
	assert.Equal(t, ebpf.Array, dropped.Type)
	assert.EqualValues(t, 1, dropped.MaxEntries)
	assert.EqualValues(t, 8, dropped.ValueSize)

	// The per-reason counters are named after contract.Reason, in its order.
	var names []string
	for _, m := range flows.Value.(*btf.Struct).Members {
		names = append(names, m.Name)
	}
	var want []string
	for _, r := range contract.Reason.Values {
		want = append(want, strings.ToLower(r.Name))
	}
	i := slices.Index(names, want[0])
	require.GreaterOrEqual(t, i, 0, "members %v", names)
	assert.Equal(t, want, names[i:i+len(want)], "per-reason counters of struct %s", contract.FlowCountStruct)
}

// The enum lists are the object's enums, value for value, and the event's
// members have those types.
func TestEnums(t *testing.T) {
	spec := loadSpec(t)
	var ev *btf.Struct
	require.NoError(t, spec.Types.TypeByName(contract.EventStruct, &ev))
	members, err := gadgettest.Flatten(ev)
	require.NoError(t, err)
	for _, want := range contract.Enums {
		t.Run(want.CType, func(t *testing.T) {
			var e *btf.Enum
			require.NoError(t, spec.Types.TypeByName(want.CType, &e))
			var got []contract.EnumValue
			for _, v := range e.Values {
				got = append(got, contract.EnumValue{Name: v.Name, Value: v.Value})
			}
			assert.Equal(t, want.Values, got)
			m, ok := members[want.Field]
			require.True(t, ok, "struct event has %s", want.Field)
			me, ok := m.Type.(*btf.Enum)
			require.True(t, ok, "%s is an enum", want.Field)
			assert.Equal(t, want.CType, me.Name)
		})
	}
}

type gadgetMeta struct {
	Datasources map[string]struct {
		Fields map[string]struct {
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"fields"`
	} `yaml:"datasources"`
	Params struct {
		Wasm yaml.Node `yaml:"wasm"` // a mapping, kept in order
	} `yaml:"params"`
	Programs map[string]struct {
		Perf    map[string]string `yaml:"perf"`
		Sampler struct {
			Frequency uint64 `yaml:"frequency"`
		} `yaml:"sampler"`
	} `yaml:"programs"`
}

type paramMeta struct {
	Key            string   `yaml:"key"`
	DefaultValue   string   `yaml:"defaultValue"`
	PossibleValues []string `yaml:"possibleValues"`
}

// gadget.yaml shows the same enum names, parameters and defaults.
func TestGadgetYAML(t *testing.T) {
	raw, err := os.ReadFile(*gadgetYAML)
	require.NoError(t, err)
	var meta gadgetMeta
	require.NoError(t, yaml.Unmarshal(raw, &meta))

	ds, ok := meta.Datasources[contract.DataSource]
	require.True(t, ok, "datasource %s", contract.DataSource)
	for _, e := range []contract.Enum{contract.Type, contract.Reason, contract.State} {
		field := strings.TrimSuffix(e.Field, "_raw")
		assert.Equal(t, strings.Join(e.Names(), ", "), ds.Fields[field].Annotations["value.one-of"], "%s value.one-of", field)
		assert.Equal(t, "true", ds.Fields[e.Field].Annotations["columns.hidden"], "%s hidden", e.Field)
	}

	var params []contract.Param
	possible := map[string][]string{}
	n := meta.Params.Wasm
	require.Equal(t, yaml.MappingNode, n.Kind)
	for i := 0; i+1 < len(n.Content); i += 2 {
		var p paramMeta
		require.NoError(t, n.Content[i+1].Decode(&p))
		assert.Equal(t, n.Content[i].Value, p.Key)
		params = append(params, contract.Param{Key: p.Key, Default: p.DefaultValue})
		possible[p.Key] = p.PossibleValues
	}
	assert.Equal(t, contract.Params, params)
	assert.Equal(t, contract.LossHooks, possible[contract.ParamLossHook])
	assert.Equal(t, contract.Families, possible[contract.ParamFamily])

	// ig_wakeup's perf event, at the frequency of the default --max-delay
	// (the wasm operator sets it for other values).
	wakeup, ok := meta.Programs[strings.TrimPrefix(contract.WakeupSection, "perf_event/")]
	require.True(t, ok, "programs: the perf event of %s", contract.WakeupSection)
	assert.Equal(t, map[string]string{"type": "software", "config": "count_sw_cpu_clock", "sampleType": "sample_raw"}, wakeup.Perf)
	assert.Equal(t, contract.WakeupHz(contract.DefaultConfig().MaxDelayUs), wakeup.Sampler.Frequency)
}

// makeVars reads the Makefile's plain assignments (NAME ?= value, NAME :=
// value).
func makeVars(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(*makefile)
	require.NoError(t, err)
	vars := map[string]string{}
	for _, l := range strings.Split(string(raw), "\n") {
		for _, op := range []string{" ?= ", " := "} {
			if k, v, ok := strings.Cut(l, op); ok && !strings.ContainsAny(k, " \t#") {
				vars[k] = strings.TrimSpace(v)
			}
		}
	}
	return vars
}

// The image's one reference, the Makefile's, is what gadget.yaml,
// artifacthub-pkg.yml and README tell users; no usage line names the
// short name, which ig resolves to IG's own gadget.
func TestPublishingReference(t *testing.T) {
	v := makeVars(t)
	assert.Equal(t, contract.Name, v["GADGET"])
	assert.Equal(t, "$(REGISTRY)/$(GADGET):$(VERSION)", v["IMAGE"])
	repo, source := v["REGISTRY"]+"/"+v["GADGET"], v["SOURCE_URL"]
	require.NotEmpty(t, v["REGISTRY"])
	require.NotEmpty(t, source)

	var meta struct {
		Homepage      string `yaml:"homepageURL"`
		Documentation string `yaml:"documentationURL"`
		Source        string `yaml:"sourceURL"`
	}
	raw, err := os.ReadFile(*gadgetYAML)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &meta))
	assert.Equal(t, source, meta.Source, "gadget.yaml sourceURL")
	assert.Equal(t, source, meta.Homepage, "gadget.yaml homepageURL")
	assert.True(t, strings.HasPrefix(meta.Documentation, source), "gadget.yaml documentationURL %s", meta.Documentation)

	var hub struct {
		Version string `yaml:"version"`
		Home    string `yaml:"homeURL"`
		Links   []struct {
			URL string `yaml:"url"`
		} `yaml:"links"`
		Images []struct {
			Image string `yaml:"image"`
		} `yaml:"containersImages"`
		Install string `yaml:"install"`
	}
	raw, err = os.ReadFile(*artifactHub)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &hub))
	release := repo + ":v" + hub.Version
	assert.Equal(t, source, hub.Home)
	require.Len(t, hub.Images, 1)
	assert.Equal(t, release, hub.Images[0].Image)
	for _, l := range hub.Links {
		assert.True(t, strings.HasPrefix(l.URL, source), "link %s", l.URL)
	}
	assert.Contains(t, hub.Install, "ig run "+release+" --public-keys=")
	assert.Contains(t, hub.Install, "kubectl gadget run "+release)

	readme, err := os.ReadFile(*readmePath)
	require.NoError(t, err)
	runs := 0
	for _, l := range strings.Split(string(readme), "\n") {
		for _, cmd := range []string{"ig run ", "kubectl gadget run "} {
			_, rest, ok := strings.Cut(l, cmd)
			if !ok || strings.HasPrefix(rest, "ARGS") {
				continue
			}
			runs++
			ref := strings.Fields(rest + " ")[0]
			assert.True(t, strings.HasPrefix(ref, repo+":") || strings.HasPrefix(ref, "$") || strings.HasPrefix(ref, "ghcr.io/you/"),
				"README runs %q: the gadget's full reference (%s:...) or a variable", ref, repo)
		}
	}
	assert.Positive(t, runs, "README shows how to run the gadget")
}
