// Package kbtf extracts a kernel's BTF (the .BTF section of vmlinux) from
// the kernel image a distribution ships, so that CO-RE relocations can be
// checked against kernels that are not running.
//
// Understood images:
//   - an ELF vmlinux (its .BTF section);
//   - an x86 bzImage, whose payload is a compressed ELF vmlinux;
//   - an arm64 Image (raw, not ELF), plain or gzip'd, or wrapped in an EFI
//     zboot stub: the BTF blob is found by scanning for its header.
//
// gzip is decompressed in Go; xz, zstd, lz4, bzip2 and lzma with the
// distribution's command-line tools (Debian: xz-utils, zstd, lz4, bzip2).
package kbtf

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/cilium/ebpf/btf"
)

// BTF header: magic 0xeB9F, version 1, flags, hdr_len, then type_off,
// type_len, str_off and str_len relative to the end of the header.
const (
	btfMagic     = 0xeB9F
	btfHeaderLen = 24
)

// Extract returns the raw BTF of the kernel image at path.
func Extract(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	raw, err := FromImage(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return raw, nil
}

// FromImage returns the raw BTF of a kernel image held in memory, checked by
// parsing it with cilium/ebpf.
func FromImage(b []byte) ([]byte, error) {
	raw, err := fromImage(b, 0)
	if err != nil {
		return nil, err
	}
	if _, err := Parse(raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Parse parses raw BTF.
func Parse(raw []byte) (*btf.Spec, error) {
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing BTF: %w", err)
	}
	return spec, nil
}

func fromImage(b []byte, depth int) ([]byte, error) {
	if depth > 3 {
		return nil, errors.New("image nested too deep")
	}
	switch {
	case bytes.HasPrefix(b, []byte(elf.ELFMAG)):
		return fromELF(b)
	case isBzImage(b):
		payload, err := bzImagePayload(b)
		if err != nil {
			return nil, err
		}
		inner, err := decompress(payload)
		if err != nil {
			return nil, fmt.Errorf("bzImage payload: %w", err)
		}
		return fromImage(inner, depth+1)
	case isZboot(b):
		payload, err := zbootPayload(b)
		if err != nil {
			return nil, err
		}
		inner, err := decompress(payload)
		if err != nil {
			return nil, fmt.Errorf("zboot payload: %w", err)
		}
		return fromImage(inner, depth+1)
	case compression(b) != "":
		inner, err := decompress(b)
		if err != nil {
			return nil, err
		}
		return fromImage(inner, depth+1)
	case isArm64Image(b):
		return Scan(b)
	}
	return nil, errors.New("not a kernel image this package understands (ELF, bzImage, arm64 Image, EFI zboot, compressed)")
}

func fromELF(b []byte) ([]byte, error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("reading ELF: %w", err)
	}
	sec := f.Section(".BTF")
	if sec == nil {
		return nil, errors.New("ELF vmlinux has no .BTF section (kernel built without CONFIG_DEBUG_INFO_BTF?)")
	}
	if sec.Type == elf.SHT_NOBITS {
		return nil, errors.New("ELF .BTF section has no contents")
	}
	return sec.Data()
}

// x86 boot protocol (Documentation/arch/x86/boot.rst): "HdrS" at 0x202,
// setup_sects at 0x1f1, payload_offset and payload_length at 0x248 and
// 0x24c, relative to the protected-mode code after the setup sectors.
func isBzImage(b []byte) bool {
	return len(b) > 0x250 && string(b[0x202:0x206]) == "HdrS"
}

func bzImagePayload(b []byte) ([]byte, error) {
	if v := binary.LittleEndian.Uint16(b[0x206:]); v < 0x208 {
		return nil, fmt.Errorf("bzImage boot protocol %#x has no payload fields (needs 2.08)", v)
	}
	setup := int(b[0x1f1])
	if setup == 0 {
		setup = 4
	}
	off := (setup+1)*512 + int(binary.LittleEndian.Uint32(b[0x248:]))
	n := int(binary.LittleEndian.Uint32(b[0x24c:]))
	if n == 0 || off+n > len(b) {
		return nil, fmt.Errorf("bzImage payload %d+%d outside the file (%d bytes)", off, n, len(b))
	}
	return b[off : off+n], nil
}

// arm64 Image header (Documentation/arch/arm64/booting.rst): magic
// "ARM\x64" at 0x38.
func isArm64Image(b []byte) bool {
	return len(b) > 0x40 && string(b[0x38:0x3c]) == "ARM\x64"
}

// EFI zboot (drivers/firmware/efi/libstub/zboot-header.S): "MZ", "zimg",
// payload offset and size, and the compression's name at 24.
func isZboot(b []byte) bool {
	return len(b) > 64 && string(b[0:2]) == "MZ" && string(b[4:8]) == "zimg"
}

func zbootPayload(b []byte) ([]byte, error) {
	off := int(binary.LittleEndian.Uint32(b[8:]))
	n := int(binary.LittleEndian.Uint32(b[12:]))
	if n == 0 || off+n > len(b) {
		return nil, fmt.Errorf("zboot payload %d+%d outside the file (%d bytes)", off, n, len(b))
	}
	return b[off : off+n], nil
}

var magics = []struct {
	name  string
	magic []byte
}{
	{"gzip", []byte{0x1f, 0x8b}},
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{"lz4", []byte{0x02, 0x21, 0x4c, 0x18}}, // legacy frame, as the kernel writes it
	{"lz4", []byte{0x04, 0x22, 0x4d, 0x18}},
	{"bzip2", []byte("BZh")},
	{"lzma", []byte{0x5d, 0x00, 0x00}},
}

// compression names the compressor whose magic starts b, or "".
func compression(b []byte) string {
	for _, m := range magics {
		if bytes.HasPrefix(b, m.magic) {
			return m.name
		}
	}
	return ""
}

// tools decompress to stdout; xz stops after one stream.
var tools = map[string][]string{
	"xz":    {"xz", "-dc", "--single-stream"},
	"lzma":  {"xz", "-dc", "--format=lzma"},
	"zstd":  {"zstd", "-dcq"},
	"lz4":   {"lz4", "-dcq"},
	"bzip2": {"bzip2", "-dcq"},
}

func decompress(b []byte) ([]byte, error) {
	name := compression(b)
	if name == "" {
		return nil, fmt.Errorf("unknown compression (first bytes % x)", b[:min(len(b), 8)])
	}
	if name == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		// One member only: what follows it is not gzip.
		zr.Multistream(false)
		return io.ReadAll(zr)
	}
	// The kernel's build appends the uncompressed size (4 bytes, little
	// endian) to xz, zstd, lz4, bzip2 and lzma payloads, which zstd and lz4
	// take for a broken frame: when the last 4 bytes look like that size,
	// try without them first.
	tries := [][]byte{b}
	if n := len(b); n > 4 {
		size := binary.LittleEndian.Uint32(b[n-4:])
		if int(size) > n && size < 1<<30 {
			tries = [][]byte{b[:n-4], b}
		}
	}
	var err error
	for _, in := range tries {
		var out []byte
		if out, err = runTool(tools[name], in); err == nil {
			return out, nil
		}
	}
	return nil, err
}

func runTool(argv []string, in []byte) ([]byte, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("%s is needed to decompress this kernel (Debian: apt-get install xz-utils zstd lz4 bzip2): %w", argv[0], err)
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Stdin = bytes.NewReader(in)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v: %w: %s", argv, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out.Bytes(), nil
}

// Scan finds a BTF blob in a raw image by its header (little- or
// big-endian) and returns the first candidate that parses.
func Scan(b []byte) ([]byte, error) {
	var tried int
	var lastErr error
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		var magic [2]byte
		bo.PutUint16(magic[:], btfMagic)
		for from := 0; ; {
			i := bytes.Index(b[from:], magic[:])
			if i < 0 {
				break
			}
			at := from + i
			from = at + 1
			n, ok := blobLen(b[at:], bo)
			if !ok {
				continue
			}
			tried++
			raw := b[at : at+n]
			if _, err := Parse(raw); err != nil {
				lastErr = err
				continue
			}
			return raw, nil
		}
	}
	if tried == 0 {
		return nil, errors.New("no BTF header in the image (kernel built without CONFIG_DEBUG_INFO_BTF?)")
	}
	return nil, fmt.Errorf("%d BTF header candidates, none parses: %w", tried, lastErr)
}

// blobLen checks a BTF header at the start of b and returns the size of the
// whole blob (header, types and strings).
func blobLen(b []byte, bo binary.ByteOrder) (int, bool) {
	if len(b) < btfHeaderLen {
		return 0, false
	}
	version, flags := b[2], b[3]
	hdrLen := bo.Uint32(b[4:])
	if version != 1 || flags != 0 || hdrLen != btfHeaderLen {
		return 0, false
	}
	typeOff, typeLen := uint64(bo.Uint32(b[8:])), uint64(bo.Uint32(b[12:]))
	strOff, strLen := uint64(bo.Uint32(b[16:])), uint64(bo.Uint32(b[20:]))
	end := max(typeOff+typeLen, strOff+strLen)
	if typeLen == 0 || strLen == 0 || btfHeaderLen+end > uint64(len(b)) {
		return 0, false
	}
	return int(btfHeaderLen + end), true
}

// Cached returns the BTF of the kernel image vmlinuz, kept in
// dir/name.btf: a valid file there is used as it is, otherwise the BTF is
// extracted and the file written (atomically). It also returns the file's
// path.
func Cached(dir, name, vmlinuz string) (*btf.Spec, string, error) {
	path := filepath.Join(dir, name+".btf")
	if raw, err := os.ReadFile(path); err == nil {
		if spec, err := Parse(raw); err == nil {
			return spec, path, nil
		}
	}
	raw, err := Extract(vmlinuz)
	if err != nil {
		return nil, "", err
	}
	spec, err := Parse(raw)
	if err != nil {
		return nil, "", err
	}
	if err := writeFile(dir, name+".btf", raw); err != nil {
		return nil, "", err
	}
	return spec, path, nil
}

func writeFile(dir, name string, b []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, name+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

// Load parses a BTF file written by Cached.
func Load(path string) (*btf.Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	spec, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return spec, nil
}
