package gadgettest

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"trace_tcpretrans/go/contract"
)

// ConfigLayout returns the object's struct config, the value type of its
// config map.
func ConfigLayout(spec *ebpf.CollectionSpec) (*btf.Struct, error) {
	ms, ok := spec.Maps[contract.ConfigMap]
	if !ok {
		return nil, fmt.Errorf("the object has no map %s", contract.ConfigMap)
	}
	st, ok := btf.UnderlyingType(ms.Value).(*btf.Struct)
	if !ok {
		return nil, fmt.Errorf("%s: the value type is %v, not a struct", contract.ConfigMap, ms.Value)
	}
	return st, nil
}

// EncodeByName lays values out by the members of st, in the host's byte
// order. Every member must have a value; values without a member are
// left out (an older object may lack a newer parameter).
func EncodeByName(st *btf.Struct, values map[string]uint64) ([]byte, error) {
	out := make([]byte, st.Size)
	for _, m := range st.Members {
		v, ok := values[m.Name]
		if !ok {
			return nil, fmt.Errorf("struct %s: no value for member %q", st.Name, m.Name)
		}
		size, err := btf.Sizeof(m.Type)
		if err != nil {
			return nil, fmt.Errorf("struct %s member %s: %w", st.Name, m.Name, err)
		}
		off := int(m.Offset.Bytes())
		if m.BitfieldSize != 0 || off+size > len(out) {
			return nil, fmt.Errorf("struct %s member %s: unsupported layout", st.Name, m.Name)
		}
		if err := PutUint(out[off:off+size], v); err != nil {
			return nil, fmt.Errorf("struct %s member %s: %w", st.Name, m.Name, err)
		}
	}
	return out, nil
}

// PutUint writes v into b, a 1, 2, 4 or 8-byte integer in the host's byte
// order.
func PutUint(b []byte, v uint64) error {
	switch len(b) {
	case 1:
		b[0] = uint8(v)
	case 2:
		binary.NativeEndian.PutUint16(b, uint16(v))
	case 4:
		binary.NativeEndian.PutUint32(b, uint32(v))
	case 8:
		binary.NativeEndian.PutUint64(b, v)
	default:
		return fmt.Errorf("%d-byte integers are not supported", len(b))
	}
	return nil
}

// Uint reads a 1, 2, 4 or 8-byte integer in the host's byte order.
func Uint(b []byte) (uint64, error) {
	switch len(b) {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.NativeEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.NativeEndian.Uint32(b)), nil
	case 8:
		return binary.NativeEndian.Uint64(b), nil
	}
	return 0, fmt.Errorf("%d-byte integers are not supported", len(b))
}
