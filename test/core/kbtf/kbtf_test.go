package kbtf

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"flag"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/require"
)

var cacheDir = flag.String("btf-cache", "/var/cache/trace_tcpretrans/btf", "BTF files written by the CO-RE test, checked by TestCachedKernels")

// probeBTF is a small BTF blob with one struct that the tests look for.
func probeBTF(t *testing.T, order binary.ByteOrder) []byte {
	t.Helper()
	i32 := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	s := &btf.Struct{Name: "kbtf_probe", Size: 8, Members: []btf.Member{
		{Name: "first", Type: i32, Offset: 0},
		{Name: "second", Type: i32, Offset: 32},
	}}
	b, err := btf.NewBuilder([]btf.Type{s}, nil)
	require.NoError(t, err)
	raw, err := b.Marshal(nil, &btf.MarshalOptions{Order: order})
	require.NoError(t, err)
	return raw
}

// requireProbe checks that raw is exactly want and parses to kbtf_probe.
func requireProbe(t *testing.T, want, raw []byte) {
	t.Helper()
	require.Equal(t, want, raw, "extracted BTF differs from what was embedded")
	spec, err := Parse(raw)
	require.NoError(t, err)
	var s *btf.Struct
	require.NoError(t, spec.TypeByName("kbtf_probe", &s))
	require.Len(t, s.Members, 2)
	require.Equal(t, "second", s.Members[1].Name)
	require.EqualValues(t, 32, s.Members[1].Offset)
}

// elfWith returns a minimal ELF64 file with one section name holding data,
// as a stripped vmlinux keeps .BTF.
func elfWith(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	shstr := "\x00" + name + "\x00.shstrtab\x00"
	dataOff := uint64(64)
	strOff := dataOff + uint64(len(data))
	shOff := (strOff + uint64(len(shstr)) + 7) &^ 7

	var buf bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: shOff, Ehsize: 64, Shentsize: 64, Shnum: 3, Shstrndx: 2,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	require.NoError(t, binary.Write(&buf, binary.LittleEndian, hdr))
	buf.Write(data)
	buf.WriteString(shstr)
	buf.Write(make([]byte, int(shOff)-buf.Len()))
	sections := []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: dataOff, Size: uint64(len(data)), Addralign: 4},
		{Name: uint32(2 + len(name)), Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1},
	}
	require.NoError(t, binary.Write(&buf, binary.LittleEndian, sections))
	return buf.Bytes()
}

// bzImage wraps a compressed payload in the parts of an x86 boot header
// that the extractor reads: one setup sector, then the payload.
func bzImage(payload []byte) []byte {
	const setupSects = 1
	img := make([]byte, (setupSects+1)*512)
	img[0x1f1] = setupSects
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x206:], 0x20f)
	const payloadOff = 0x100 // after a decompressor stub
	binary.LittleEndian.PutUint32(img[0x248:], payloadOff)
	binary.LittleEndian.PutUint32(img[0x24c:], uint32(len(payload)))
	img = append(img, make([]byte, payloadOff)...)
	img = append(img, payload...)
	return append(img, make([]byte, 300)...) // trailing code and padding
}

// compress runs a compressor as the kernel's build does and appends the
// uncompressed size like its *_with_size rules.
func compress(t *testing.T, tool string, data []byte) []byte {
	t.Helper()
	var out []byte
	switch tool {
	case "gzip":
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, err := zw.Write(data)
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		return buf.Bytes()
	case "xz":
		out = run(t, data, "xz", "-zc", "--check=crc32", "--x86", "--lzma2=preset=6")
	case "zstd":
		out = run(t, data, "zstd", "-zcq", "-19")
	case "lz4":
		out = run(t, data, "lz4", "-zcq", "-l")
	default:
		t.Fatalf("no compressor %s", tool)
	}
	return binary.LittleEndian.AppendUint32(out, uint32(len(data)))
}

func run(t *testing.T, in []byte, argv ...string) []byte {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	require.NoError(t, err, "%v (make deps installs xz-utils, zstd and lz4)", argv)
	return out
}

// junk returns n pseudo-random bytes that contain decoy BTF headers: the
// magic alone, and a whole header whose lengths point past the end.
func junk(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	copy(b[100:], []byte{0x9f, 0xeb, 0x01, 0x00})
	decoy := []byte{0x9f, 0xeb, 0x01, 0x00, 24, 0, 0, 0}
	decoy = binary.LittleEndian.AppendUint32(decoy, 0)
	decoy = binary.LittleEndian.AppendUint32(decoy, 1<<20)
	decoy = binary.LittleEndian.AppendUint32(decoy, 1<<20)
	decoy = binary.LittleEndian.AppendUint32(decoy, 1<<20)
	copy(b[200:], decoy)
	// A header with sane lengths over garbage: found, fails to parse.
	bad := []byte{0x9f, 0xeb, 0x01, 0x00, 24, 0, 0, 0}
	bad = binary.LittleEndian.AppendUint32(bad, 0)
	bad = binary.LittleEndian.AppendUint32(bad, 64)
	bad = binary.LittleEndian.AppendUint32(bad, 64)
	bad = binary.LittleEndian.AppendUint32(bad, 16)
	copy(b[300:], bad)
	return b
}

// arm64Image is a raw arm64 Image: the boot header with its magic, code,
// the BTF blob somewhere in its data, more data after it.
func arm64Image(raw []byte) []byte {
	img := junk(4096, 1)
	copy(img[0x38:], "ARM\x64")
	img = append(img, raw...)
	return append(img, junk(1024, 2)...)
}

func TestELF(t *testing.T) {
	want := probeBTF(t, binary.LittleEndian)
	raw, err := FromImage(elfWith(t, ".BTF", want))
	require.NoError(t, err)
	requireProbe(t, want, raw)

	_, err = FromImage(elfWith(t, ".rodata", want))
	require.ErrorContains(t, err, "no .BTF section")
}

func TestBzImage(t *testing.T) {
	want := probeBTF(t, binary.LittleEndian)
	vmlinux := elfWith(t, ".BTF", want)
	for _, c := range []string{"gzip", "xz", "zstd", "lz4"} {
		t.Run(c, func(t *testing.T) {
			_, err := exec.LookPath(c)
			require.NoError(t, err, "%s is needed to build the test image: run 'make deps'", c)
			img := bzImage(compress(t, c, vmlinux))
			raw, err := FromImage(img)
			require.NoError(t, err)
			requireProbe(t, want, raw)
		})
	}
}

func TestBzImageOutOfBounds(t *testing.T) {
	img := bzImage(compress(t, "gzip", []byte("vmlinux")))
	binary.LittleEndian.PutUint32(img[0x24c:], uint32(len(img)))
	_, err := FromImage(img)
	require.ErrorContains(t, err, "outside the file")
}

func TestArm64Image(t *testing.T) {
	want := probeBTF(t, binary.LittleEndian)
	img := arm64Image(want)

	raw, err := FromImage(img)
	require.NoError(t, err)
	requireProbe(t, want, raw)

	// Debian's older arm64 vmlinuz is the same Image, gzip'd.
	raw, err = FromImage(compress(t, "gzip", img))
	require.NoError(t, err)
	requireProbe(t, want, raw)
}

func TestBigEndianBlob(t *testing.T) {
	want := probeBTF(t, binary.BigEndian)
	raw, err := Scan(append(junk(512, 3), want...))
	require.NoError(t, err)
	requireProbe(t, want, raw)
}

func TestZboot(t *testing.T) {
	want := probeBTF(t, binary.LittleEndian)
	payload := compress(t, "zstd", arm64Image(want))
	img := make([]byte, 512)
	copy(img, "MZ")
	copy(img[4:], "zimg")
	binary.LittleEndian.PutUint32(img[8:], uint32(len(img)))
	binary.LittleEndian.PutUint32(img[12:], uint32(len(payload)))
	copy(img[24:], "zstd")
	img = append(img, payload...)
	img = append(img, make([]byte, 4096)...)

	raw, err := FromImage(img)
	require.NoError(t, err)
	requireProbe(t, want, raw)
}

func TestNoBTF(t *testing.T) {
	img := arm64Image(nil)
	_, err := FromImage(img)
	require.ErrorContains(t, err, "none parses", "the decoys are candidates, and none is BTF")

	plain := junk(4096, 4)
	copy(plain[0x38:], "ARM\x64")
	for i := range plain {
		if plain[i] == 0x9f || plain[i] == 0xeb {
			plain[i] = 0
		}
	}
	_, err = FromImage(plain)
	require.ErrorContains(t, err, "no BTF header")

	_, err = FromImage([]byte(strings.Repeat("not a kernel", 100)))
	require.ErrorContains(t, err, "not a kernel image")
}

func TestCached(t *testing.T) {
	dir := t.TempDir()
	want := probeBTF(t, binary.LittleEndian)
	vmlinuz := filepath.Join(dir, "vmlinuz")
	require.NoError(t, os.WriteFile(vmlinuz, arm64Image(want), 0o644))
	cache := filepath.Join(dir, "btf")

	spec, path, err := Cached(cache, "sid-arm64-1.0", vmlinuz)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(cache, "sid-arm64-1.0.btf"), path)
	onDisk, err := os.ReadFile(path)
	require.NoError(t, err)
	requireProbe(t, want, onDisk)
	_, err = spec.AnyTypeByName("kbtf_probe")
	require.NoError(t, err)
	entries, err := os.ReadDir(cache)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	// Cached: the image is not read again.
	require.NoError(t, os.Remove(vmlinuz))
	_, _, err = Cached(cache, "sid-arm64-1.0", vmlinuz)
	require.NoError(t, err)

	// A damaged file is extracted again.
	require.NoError(t, os.WriteFile(path, []byte("garbage"), 0o644))
	_, _, err = Cached(cache, "sid-arm64-1.0", vmlinuz)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, os.WriteFile(vmlinuz, arm64Image(want), 0o644))
	_, _, err = Cached(cache, "sid-arm64-1.0", vmlinuz)
	require.NoError(t, err)
	onDisk, err = os.ReadFile(path)
	require.NoError(t, err)
	requireProbe(t, want, onDisk)
}

// TestCachedKernels checks the BTF extracted from Debian's kernels, if the
// CO-RE test has cached some: each is a whole vmlinux BTF of its
// architecture, and only kernels from 6.19 on lack icsk_retransmit_timer.
func TestCachedKernels(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(*cacheDir, "*.btf"))
	if len(files) == 0 {
		t.Fatalf("no kernel BTF in %s: 'make test-core' extracts it before this test runs", *cacheDir)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".btf")
		t.Run(name, func(t *testing.T) {
			// <suite>-<arch>-<version>; suites may hold a '-'.
			var arch, version string
			for _, a := range []string{"amd64", "arm64"} {
				if _, after, ok := strings.Cut(name, "-"+a+"-"); ok {
					arch, version = a, after
				}
			}
			require.NotEmpty(t, arch, "file name %s is not <suite>-<arch>-<version>.btf", name)
			spec, err := Load(f)
			require.NoError(t, err)

			var task *btf.Struct
			require.NoError(t, spec.TypeByName("task_struct", &task))
			require.Greater(t, len(task.Members), 50)

			var regs *btf.Struct
			switch arch {
			case "amd64":
				require.NoError(t, spec.TypeByName("pt_regs", &regs))
				requireMember(t, regs, "orig_ax", true)
			case "arm64":
				require.NoError(t, spec.TypeByName("user_pt_regs", &regs))
				requireMember(t, regs, "pstate", true)
			default:
				t.Fatalf("unknown arch %q", arch)
			}

			var icsk *btf.Struct
			require.NoError(t, spec.TypeByName("inet_connection_sock", &icsk))
			requireMember(t, icsk, "icsk_retransmit_timer", !atLeast(version, 6, 19))
		})
	}
}

func requireMember(t *testing.T, s *btf.Struct, name string, present bool) {
	t.Helper()
	var names []string
	for _, m := range s.Members {
		names = append(names, m.Name)
	}
	if present {
		require.Contains(t, names, name, "struct %s", s.Name)
	} else {
		require.NotContains(t, names, name, "struct %s", s.Name)
	}
}

// atLeast compares the major.minor of a Debian kernel version.
func atLeast(version string, major, minor int) bool {
	var ma, mi int
	for i, f := range strings.FieldsFunc(version, func(r rune) bool { return r < '0' || r > '9' })[:2] {
		n := 0
		for _, c := range f {
			n = n*10 + int(c-'0')
		}
		if i == 0 {
			ma = n
		} else {
			mi = n
		}
	}
	return ma > major || ma == major && mi >= minor
}
