// Package core checks, without booting anything, that every program of the
// gadget's BPF objects (the very files the image carries, amd64 and arm64)
// survives CO-RE relocation against the BTF of every kernel Debian serves,
// from bullseye to experimental, for both architectures.
//
// For each kernel and program the test
//
//  1. relocates the program with cilium/ebpf's exported CO-RE API
//     (btf.CORERelocate and COREFixup.Apply, the steps cilium/ebpf takes at
//     load) against that kernel's BTF, plus IG's gadget_socket_value that ig
//     supplies at run time, and lists the relocations that come out
//     poisoned, named by type and field;
//  2. loads the program into the running kernel with
//     ProgramOptions.KernelTypes set to that kernel's BTF. A poisoned
//     relocation in reachable code makes the verifier refuse the program
//     ("bad CO-RE relocation: invalid func unknown#195896080"); one in code
//     a CO-RE guard (bpf_core_type_exists, bpf_core_field_exists) makes dead
//     is removed by the verifier and harmless, which only the load can tell.
//
// The tp_btf programs are the exception to step 2: they load directly from
// the kernel's structures through BTF pointers, and the running kernel's
// verifier checks each load against its own types, so a load with another
// kernel's offsets would be refused for a reason that is not the other
// kernel's. For them the test requires that the relocation against each
// kernel comes out with no poisoned relocation at all; their loading in
// each kernel is test/integration's (in the guests) and test/bpf's (here).
//
// A program fails for a kernel when the load is refused for a poisoned
// relocation or the relocation itself errs; the message names the
// program, the relocation and the kernel. A refusal that is not CO-RE's
// (the running kernel's verifier disliking the other architecture's
// object, for instance) is reported as such and fails too: nothing is
// counted as a pass that was not loaded.
package core

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/require"

	"trace_tcpretrans/test/core/kbtf"
	"trace_tcpretrans/test/gadgettest"
	"trace_tcpretrans/vm/debian"
)

var (
	objectAmd64 = flag.String("object-amd64", "../../.build/amd64.bpf.o", "the image's amd64 BPF object")
	objectArm64 = flag.String("object-arm64", "../../.build/arm64.bpf.o", "the image's arm64 BPF object")
	kernelCache = flag.String("kernel-cache", "/var/cache/trace_tcpretrans/kernels", "where Debian's kernel packages are unpacked")
	btfCache    = flag.String("btf-cache", "/var/cache/trace_tcpretrans/btf", "where the kernels' BTF is kept, as <suite>-<arch>-<version>.btf")
	suitesFlag  = flag.String("suites", "", "comma-separated Debian suites to check (default: all of debian.Suites)")
	archsFlag   = flag.String("archs", "amd64,arm64", "comma-separated architectures to check")
	parallel    = flag.Int("fetch-parallel", 3, "kernels fetched and extracted at once")
)

// object is one of the image's BPF objects.
type object struct {
	arch  string
	path  string
	spec  *ebpf.CollectionSpec
	extra []*btf.Spec             // IG's gadget_socket_value, as ig supplies it
	maps  map[string]*ebpf.Map    // created once, reused by every load
	progs []string                // program names, sorted
	types map[btf.TypeID]btf.Type // the object's own BTF, by ID
}

// kernel is one Debian kernel's BTF.
type kernel struct {
	suite, arch, version string
	spec                 *btf.Spec
}

func (k kernel) String() string {
	return fmt.Sprintf("Debian %s %s %s", k.suite, k.arch, k.version)
}

// poison is a relocation that cilium/ebpf poisons for a kernel.
type poison struct {
	offset asm.RawInstructionOffset
	what   string // e.g. "struct inet_connection_sock.icsk_retransmit_timer (byte_off)"
	why    string // e.g. "the kernel's struct inet_connection_sock has no member icsk_retransmit_timer"
}

func (p poison) String() string { return p.what + ": " + p.why }

// outcome of one program against one kernel.
type outcome struct {
	status   string   // "ok", "FAIL relocation", "FAIL load"
	poisoned []poison // all poisoned relocations, reachable or not
	hit      []poison // those the verifier reached
	err      error
}

func (o outcome) failed() bool { return o.status != "ok" }

func TestCORE(t *testing.T) {
	start := time.Now()
	archs := strings.Split(*archsFlag, ",")
	suites := debian.Suites
	if *suitesFlag != "" {
		suites = strings.Split(*suitesFlag, ",")
	}

	objects := map[string]*object{}
	for _, arch := range archs {
		path := map[string]string{"amd64": *objectAmd64, "arm64": *objectArm64}[arch]
		require.NotEmpty(t, path, "no object flag for architecture %q", arch)
		objects[arch] = loadObject(t, arch, path)
	}

	kernels := fetchKernels(t, suites, archs)
	t.Logf("kernel BTF ready in %s", time.Since(start).Round(10*time.Millisecond))

	cache := btf.NewCache()
	results := map[*kernel]map[string]outcome{}
	for _, k := range kernels {
		obj := objects[k.arch]
		results[k] = map[string]outcome{}
		t.Run(k.suite+"/"+k.arch+"/"+k.version, func(t *testing.T) {
			for _, name := range obj.progs {
				t.Run(name, func(t *testing.T) {
					o := check(obj, name, k, cache)
					results[k][name] = o
					if dead := unreached(o); dead != "" {
						t.Logf("poisoned, in code the verifier found dead (CO-RE guarded): %s", dead)
					}
					switch o.status {
					case "ok":
					case "FAIL relocation":
						var b strings.Builder
						fmt.Fprintf(&b, "program %s (%s object) fails CO-RE relocation on %s", name, obj.arch, k)
						for _, p := range o.hit {
							fmt.Fprintf(&b, "\n  relocation %s", p)
						}
						fmt.Fprintf(&b, "\n  %v", o.err)
						t.Error(b.String())
					default:
						t.Errorf("program %s (%s object) relocated for %s but the load failed for another reason: %v", name, obj.arch, k, o.err)
					}
				})
			}
		})
	}
	t.Log("\n" + table(kernels, objects, results))
	t.Logf("checked %d kernels in %s", len(kernels), time.Since(start).Round(10*time.Millisecond))
}

// unreached lists the poisoned relocations the verifier did not reach,
// grouped by type: "struct a: x, y; struct b: z".
func unreached(o outcome) string {
	fields := map[string][]string{}
	var types []string
	for _, p := range o.poisoned {
		if slices.Contains(o.hit, p) {
			continue
		}
		typ, field, _ := strings.Cut(strings.TrimSuffix(p.what, " (byte_off)"), ".")
		if !slices.Contains(types, typ) {
			types = append(types, typ)
		}
		if !slices.Contains(fields[typ], field) {
			fields[typ] = append(fields[typ], field)
		}
	}
	var parts []string
	for _, typ := range types {
		slices.Sort(fields[typ])
		parts = append(parts, typ+": "+strings.Join(fields[typ], ", "))
	}
	return strings.Join(parts, "; ")
}

// loadObject reads a BPF object and creates its maps once.
func loadObject(t *testing.T, arch, path string) *object {
	t.Helper()
	spec, err := ebpf.LoadCollectionSpec(path)
	require.NoError(t, err, "loading %s (run 'make build' first)", path)
	require.NotEmpty(t, spec.Programs, path)

	obj := &object{arch: arch, path: path, spec: spec, types: map[btf.TypeID]btf.Type{}}
	for name := range spec.Programs {
		obj.progs = append(obj.progs, name)
	}
	slices.Sort(obj.progs)
	for typ, err := range spec.Types.All() {
		require.NoError(t, err)
		id, err := spec.Types.TypeID(typ)
		require.NoError(t, err)
		obj.types[id] = typ
	}

	// ig supplies gadget_socket_value itself; the kernel's BTF has no such
	// type. Only that struct is added: the object's whole BTF would make
	// kernel types ambiguous.
	extra, err := gadgettest.SocketValueTargets(spec)
	require.NoError(t, err, path)
	require.NotEmpty(t, extra, "%s has no gadget_socket_value", path)
	obj.extra = extra

	maps := spec.Copy()
	maps.Programs = nil
	coll, err := ebpf.NewCollection(maps)
	require.NoError(t, err, "creating the maps of %s", path)
	t.Cleanup(coll.Close)
	obj.maps = coll.Maps
	return obj
}

// fetchKernels downloads (once) each suite's newest kernel for each arch
// and extracts (once) its BTF.
func fetchKernels(t *testing.T, suites, archs []string) []*kernel {
	t.Helper()
	var jobs []*kernel
	for _, s := range suites {
		for _, a := range archs {
			jobs = append(jobs, &kernel{suite: s, arch: a})
		}
	}
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, max(1, *parallel))
	var wg sync.WaitGroup
	for i, k := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = prepare(k)
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	return jobs
}

func prepare(k *kernel) error {
	kern, err := debian.Fetch(*kernelCache, k.suite, k.arch, false)
	if err != nil {
		return fmt.Errorf("fetching the kernel of Debian %s %s: %w", k.suite, k.arch, err)
	}
	k.version = kern.Version
	spec, _, err := kbtf.Cached(*btfCache, k.suite+"-"+k.arch+"-"+k.version, kern.Vmlinuz)
	if err != nil {
		return fmt.Errorf("BTF of %s: %w", k, err)
	}
	if err := checkArch(spec, k.arch); err != nil {
		return fmt.Errorf("BTF of %s: %w", k, err)
	}
	k.spec = spec
	return nil
}

// checkArch makes sure a BTF is of the architecture it is filed under.
func checkArch(spec *btf.Spec, arch string) error {
	want := map[string]string{"amd64": "orig_ax", "arm64": "orig_x0"}[arch]
	var regs *btf.Struct
	if err := spec.TypeByName("pt_regs", &regs); err != nil {
		return err
	}
	for _, m := range regs.Members {
		if m.Name == want {
			return nil
		}
	}
	return fmt.Errorf("struct pt_regs has no %s: not an %s kernel", want, arch)
}

// check relocates one program for a kernel and loads it.
func check(obj *object, name string, k *kernel, cache *btf.Cache) outcome {
	prog := obj.spec.Programs[name]
	poisoned, err := relocate(obj, prog, k)
	if err != nil {
		return outcome{status: "FAIL relocation", err: err}
	}
	if prog.Type == ebpf.Tracing {
		if len(poisoned) > 0 {
			return outcome{status: "FAIL relocation", poisoned: poisoned, hit: poisoned,
				err: errors.New("a tp_btf program cannot be loaded with another kernel's types: every poisoned relocation counts")}
		}
		return outcome{status: "ok"}
	}

	spec := obj.spec.Copy()
	for n := range spec.Programs {
		if n != name {
			delete(spec.Programs, n)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{
			KernelTypes:            k.spec,
			ExtraRelocationTargets: obj.extra,
		},
		MapReplacements: obj.maps,
		Cache:           cache,
	})
	if err == nil {
		coll.Close()
		return outcome{status: "ok", poisoned: poisoned}
	}

	o := outcome{poisoned: poisoned, err: err}
	var verr *ebpf.VerifierError
	if errors.As(err, &verr) && strings.Contains(err.Error(), "bad CO-RE relocation") {
		o.status = "FAIL relocation"
		o.hit = reached(verr, poisoned)
		return o
	}
	o.status = "FAIL load"
	return o
}

// relocate computes the program's CO-RE fixups for the kernel as
// cilium/ebpf does at load, and returns the relocations that come out
// poisoned.
func relocate(obj *object, prog *ebpf.ProgramSpec, k *kernel) ([]poison, error) {
	var relos []*btf.CORERelocation
	var insns []asm.Instruction
	var offsets []asm.RawInstructionOffset
	iter := prog.Instructions.Iterate()
	for iter.Next() {
		if r := btf.CORERelocationMetadata(iter.Ins); r != nil {
			relos = append(relos, r)
			insns = append(insns, *iter.Ins)
			offsets = append(offsets, iter.Offset)
		}
	}
	if len(relos) == 0 {
		return nil, nil
	}
	bo := prog.ByteOrder
	if bo == nil {
		bo = obj.spec.ByteOrder
	}
	var b btf.Builder
	targets := append([]*btf.Spec{k.spec}, obj.extra...)
	fixups, err := btf.CORERelocate(relos, targets, bo, b.Add)
	if err != nil {
		return nil, fmt.Errorf("relocating %s: %w", prog.Name, err)
	}
	var out []poison
	for i, f := range fixups {
		ins := insns[i]
		if err := f.Apply(&ins); err != nil {
			return nil, fmt.Errorf("relocating %s: %s: %w", prog.Name, describe(obj, relos[i]), err)
		}
		if isPoison(ins) {
			out = append(out, poison{offset: offsets[i], what: describe(obj, relos[i]), why: explain(obj, relos[i], k.spec)})
		}
	}
	return out, nil
}

// isPoison recognises the instructions cilium/ebpf puts in place of a
// relocation it cannot satisfy.
func isPoison(ins asm.Instruction) bool {
	if ins.IsBuiltinCall() {
		return ins.Constant == btf.COREBadRelocationSentinel
	}
	return ins.OpCode.IsDWordLoad() && ins.Dst == asm.R10 && ins.Constant == btf.COREBadRelocationSentinel
}

// badInsn matches the verifier's log line for a poisoned instruction, e.g.
// "123: (85) call unknown#195896080" or "7: (18) r10 = 0xbad2310".
var badInsn = regexp.MustCompile(`^(\d+): \(\w\w\) (call unknown#195896080|r10 = 0xbad2310)`)

// reached returns the poisoned relocations at the instructions the
// verifier stopped at; all of them if it cannot tell.
func reached(verr *ebpf.VerifierError, poisoned []poison) []poison {
	var hit []poison
	for _, line := range verr.Log {
		m := badInsn.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		for _, p := range poisoned {
			if int(p.offset) == n && !slices.Contains(hit, p) {
				hit = append(hit, p)
			}
		}
	}
	if len(hit) == 0 {
		return poisoned
	}
	return hit
}

// reloString parses CORERelocation.String(), e.g.
// `CORERelocation(byte_off, Struct:"sock"[0:1:2], local_id=42)`: cilium/ebpf
// keeps a relocation's fields to itself.
var reloString = regexp.MustCompile(`^CORERelocation\((\w+), .*\[([0-9:]+)\], local_id=(\d+)\)$`)

// describe names a relocation by type and field path, e.g. "struct
// inet_connection_sock.icsk_retransmit_timer (byte_off)".
func describe(obj *object, r *btf.CORERelocation) string {
	kind, typ, acc, ok := parseRelo(obj, r)
	if !ok {
		return r.String()
	}
	return fmt.Sprintf("%s (%s)", pathOf(typ, kind, acc), kind)
}

func parseRelo(obj *object, r *btf.CORERelocation) (string, btf.Type, []int, bool) {
	m := reloString.FindStringSubmatch(r.String())
	if m == nil {
		return "", nil, nil, false
	}
	id, _ := strconv.Atoi(m[3])
	typ, ok := obj.types[btf.TypeID(id)]
	if !ok {
		return "", nil, nil, false
	}
	var acc []int
	for _, s := range strings.Split(m[2], ":") {
		n, _ := strconv.Atoi(s)
		acc = append(acc, n)
	}
	return m[1], typ, acc, true
}

func typeName(t btf.Type) string {
	switch t := btf.UnderlyingType(t).(type) {
	case *btf.Struct:
		return "struct " + t.Name
	case *btf.Union:
		return "union " + t.Name
	case *btf.Enum:
		return "enum " + t.Name
	default:
		return t.TypeName()
	}
}

func isFieldKind(kind string) bool {
	switch kind {
	case "byte_off", "byte_sz", "field_exists", "signed", "lshift_u64", "rshift_u64":
		return true
	}
	return false
}

// pathOf renders a relocation's accessor: "struct a.b.c", "enum e::V".
func pathOf(typ btf.Type, kind string, acc []int) string {
	name := typeName(typ)
	switch {
	case strings.HasPrefix(kind, "enumval"):
		if e, ok := btf.UnderlyingType(typ).(*btf.Enum); ok && acc[0] < len(e.Values) {
			return name + "::" + e.Values[acc[0]].Name
		}
		return name
	case !isFieldKind(kind):
		return name
	}
	path := name
	if acc[0] != 0 {
		path += fmt.Sprintf("[%d]", acc[0])
	}
	t := btf.UnderlyingType(typ)
	for _, i := range acc[1:] {
		if members, ok := membersOf(t); ok {
			if i >= len(members) {
				return path + fmt.Sprintf(".#%d", i)
			}
			if members[i].Name == "" {
				path += ".(anonymous)"
			} else {
				path += "." + members[i].Name
			}
			t = btf.UnderlyingType(members[i].Type)
			continue
		}
		a, ok := t.(*btf.Array)
		if !ok {
			return path + fmt.Sprintf(".#%d", i)
		}
		path += fmt.Sprintf("[%d]", i)
		t = btf.UnderlyingType(a.Type)
	}
	return path
}

// membersOf returns the members of a struct or union.
func membersOf(t btf.Type) ([]btf.Member, bool) {
	switch c := t.(type) {
	case *btf.Struct:
		return c.Members, true
	case *btf.Union:
		return c.Members, true
	}
	return nil, false
}

// explain says what the kernel lacks for a poisoned relocation.
func explain(obj *object, r *btf.CORERelocation, kspec *btf.Spec) string {
	kind, typ, acc, ok := parseRelo(obj, r)
	if !ok {
		return "no match in the kernel's BTF"
	}
	local := btf.UnderlyingType(typ)
	// A local name "x___flavor" matches the kernel's "x".
	essential := local.TypeName()
	if i := strings.Index(essential, "___"); i > 0 {
		essential = essential[:i]
	}
	cands, _ := kspec.AnyTypesByName(essential)
	var same []btf.Type
	for _, c := range cands {
		if fmt.Sprintf("%T", btf.UnderlyingType(c)) == fmt.Sprintf("%T", local) {
			same = append(same, btf.UnderlyingType(c))
		}
	}
	if len(same) == 0 {
		return fmt.Sprintf("the kernel has no %s", strings.Replace(typeName(local), local.TypeName(), essential, 1))
	}
	if strings.HasPrefix(kind, "enumval") {
		if e, ok := local.(*btf.Enum); ok && acc[0] < len(e.Values) {
			return fmt.Sprintf("the kernel's enum %s has no value %s", essential, e.Values[acc[0]].Name)
		}
	}
	if !isFieldKind(kind) {
		return fmt.Sprintf("the kernel's %s does not match", typeName(same[0]))
	}
	// Follow the named members in the kernel's type.
	t := local
	k := same[0]
	for _, i := range acc[1:] {
		members, ok := membersOf(t)
		if !ok || i >= len(members) {
			break
		}
		m := members[i]
		t = btf.UnderlyingType(m.Type)
		if m.Name == "" {
			continue // anonymous: the kernel's members are searched through
		}
		km, found := findMember(k, m.Name)
		if !found {
			return fmt.Sprintf("the kernel's %s has no member %s", typeName(k), m.Name)
		}
		k = btf.UnderlyingType(km.Type)
	}
	return fmt.Sprintf("the kernel's %s has an incompatible layout or type", typeName(same[0]))
}

// findMember looks for a named member, also inside anonymous members.
func findMember(t btf.Type, name string) (btf.Member, bool) {
	members, _ := membersOf(t)
	for _, m := range members {
		if m.Name == name {
			return m, true
		}
		if m.Name == "" {
			if found, ok := findMember(btf.UnderlyingType(m.Type), name); ok {
				return found, true
			}
		}
	}
	return btf.Member{}, false
}

// table renders the results: one row per kernel, one column per program.
func table(kernels []*kernel, objects map[string]*object, results map[*kernel]map[string]outcome) string {
	var progs []string
	for _, obj := range objects {
		for _, p := range obj.progs {
			if !slices.Contains(progs, p) {
				progs = append(progs, p)
			}
		}
	}
	slices.Sort(progs)
	header := []string{"suite", "arch", "version"}
	rows := [][]string{append(header, progs...)}
	var notes []string
	for _, k := range kernels {
		row := []string{k.suite, k.arch, k.version}
		for _, p := range progs {
			o, ok := results[k][p]
			switch {
			case !ok:
				row = append(row, "-")
			case o.failed():
				row = append(row, o.status)
				for _, h := range o.hit {
					notes = append(notes, fmt.Sprintf("%s %s %s: %s", k.suite, k.arch, p, h))
				}
				if len(o.hit) == 0 {
					notes = append(notes, fmt.Sprintf("%s %s %s: %v", k.suite, k.arch, p, o.err))
				}
			default:
				row = append(row, "ok")
			}
		}
		rows = append(rows, row)
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	b.WriteString("CO-RE relocation of the image's programs against Debian's kernels:\n")
	for _, r := range rows {
		for i, c := range r {
			fmt.Fprintf(&b, "%-*s  ", widths[i], c)
		}
		b.WriteString("\n")
	}
	for _, n := range notes {
		b.WriteString("  " + n + "\n")
	}
	return b.String()
}
