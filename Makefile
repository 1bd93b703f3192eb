# trace_tcpretrans: build, run and test the gadget.
#
#   make run     run the gadget (here, or in a VM where this kernel can't run ig)
#   make test    unit tests, BPF tests on this kernel, integration tests,
#                kubectl gadget on a Kubernetes node (test-k8s)
#   make build   build the gadget image $(IMAGE) with bin/ig
#   make deps    install build and test dependencies (idempotent)
#   make test-k8s  the gadget through kubectl gadget on a single-node cluster
#                in a VM (make k8s builds the cluster's parts once)
#   make bench   benchmark against the floor, IG's own trace_tcpretrans
#                (COMPARE_IMAGE), BCC, bpftrace: writes bench/results/REPORT.md,
#                bench.png and raw.json
#   make compare-image  IG's own trace_tcpretrans gadget, built from IG's Go
#                module into $(IG_OWN_IMAGE) (make bench's comparison)
#   make keys    a cosign key pair for local signing (keys/cosign.key, .pub)
#   make push    push $(IMAGE) to its registry
#   make sign    sign the pushed $(IMAGE) with $(COSIGN_KEY)
#   make timeline  README's chart of retransmissions per second by reason,
#                from the last make test-integration

IG_VERSION ?= v0.50.1

# The image's one reference. ig resolves a name without a registry
# (trace_tcpretrans) to ghcr.io/inspektor-gadget/gadget/trace_tcpretrans, IG's
# own gadget; this gadget always goes by its full name. Publish under your own
# path with REGISTRY=ghcr.io/you.
REGISTRY ?= ghcr.io/trace-tcpretrans
GADGET := trace_tcpretrans
ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
IMAGE ?= $(REGISTRY)/$(GADGET):$(VERSION)
SOURCE_URL ?= https://github.com/trace-tcpretrans/trace_tcpretrans
# make push and make sign: a registry reached over plain HTTP (host:port), the
# signing key (a file or env://VAR, as cosign takes it) and its public half.
INSECURE_REGISTRY ?=
COSIGN_KEY ?= keys/cosign.key
COSIGN_PUB ?= keys/cosign.pub
ARGS ?=
CLANG ?= clang-19
LLVM_STRIP ?= llvm-strip-19

export PATH := /usr/local/go/bin:$(PATH)

BIN := $(CURDIR)/bin
IG := $(BIN)/ig
OUT := $(CURDIR)/.build
BPF_OBJ := $(OUT)/amd64.bpf.o
BPF_OBJ_ARM64 := $(OUT)/arm64.bpf.o
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Ordered so that the two guests running side by side finish about together
# (6.1 and 6.12 also run the one-guest tests below; in one run 6.1 took 24
# minutes, 7.3 23, 5.10 20, 6.12 28) and the Kubernetes node's guest, two
# TCG threads, starts beside the last of them.
KERNELS ?= 6.1 7.3 5.10 6.12
# The kernel whose guest also runs TestPublish (registry, cosign, ig's
# signature verification: ig's behaviour, not the kernel's): the guest that
# is otherwise the shortest.
PUBLISH_KERNEL ?= 6.1
# The kernel whose guest also runs TestMetricsAndCounts (ig's metrics and
# map iterator against the event stream, about 2.5 minutes); the count
# mode's BPF path is loaded by every guest and run natively by test-bpf.
METRICS_KERNEL ?= 6.12
# Tests of what ig and the operator do whatever the kernel (the table output,
# bad parameter values, --filter and --fields, --family, --loss=false and
# --synack=false), each in one guest (TEST@KERNEL), on the guests that are
# otherwise the shortest; every guest runs the kernel's side (hooks, reasons,
# states, loss probes, clean detach, delivery latency, the storm).
ONE_GUEST_TESTS ?= TestGuideTable@6.1 TestBadParams@6.1 TestFilterAndFields@6.12 TestFamilyParam@6.12 TestLossAndSynackOff@6.12
# make test-k8s: the kernel of the Kubernetes node's guest, and where the
# cluster's parts (scripts/k8s.sh) are kept.
K8S_KERNEL ?= 6.12
K8S_CACHE ?= /var/cache/trace_tcpretrans/k8s
# The node's guest runs one TCG thread per CPU: with one thread for both,
# IG's daemon alone kept it busy and the gadget did not attach in 5 minutes.
K8S_TCG ?= multi
# make run boots this kernel where the host cannot run ig.
RUN_KERNEL ?= 7.3
# Guests run side by side: a TCG guest uses one host thread.
JOBS ?= 2
VM := $(BIN)/vm

# make test-core: where Debian's kernels are unpacked and their BTF is kept.
CORE_KERNEL_CACHE ?= /var/cache/trace_tcpretrans/kernels
CORE_BTF_CACHE ?= /var/cache/trace_tcpretrans/btf

# make bench: runs per configuration, seconds per native run and per VM run,
# workload levels (streams:1-in-N drop:SYNs per second), the VM's kernel, the
# image from ig's local store to compare with (IG's own gadget by default;
# COMPARE_IMAGE= for none), and the lock that serializes VM boots on this
# machine.
BENCH_RUNS ?= 3
BENCH_SECONDS ?= 20
BENCH_VM_SECONDS ?= 10
BENCH_NATIVE_LEVELS ?= 8:50:0
BENCH_VM_LEVELS ?= 8:50:0,16:10:400,16:10:1500,8:10:3000
BENCH_KERNEL ?= 6.1
BENCH_VM ?= 1
# IG's own trace_tcpretrans at IG_VERSION, built by make compare-image. A
# name of its own: neither this gadget's nor IG's published
# ghcr.io/inspektor-gadget/gadget/trace_tcpretrans, which a local build would
# shadow.
IG_OWN_IMAGE := localhost/ig-own/trace_tcpretrans:$(IG_VERSION)
COMPARE_IMAGE ?= $(IG_OWN_IMAGE)
VM_LOCK ?= /tmp/vm.lock

.PHONY: all deps ig vm build run test test-unit test-bpf test-core test-integration test-k8s k8s k8s-tests export inspect clean bench compare-image keys push sign timeline

all: build

deps:
	@$(SUDO) env "PATH=$(PATH)" IG_VERSION=$(IG_VERSION) scripts/deps.sh

ig: $(IG)

# cosign, built from its module (tools/cosign), signs the image the way ig
# verifies it.
COSIGN := $(BIN)/cosign

$(COSIGN): tools/cosign/go.mod tools/cosign/go.sum
	@mkdir -p $(BIN)
	@echo "building cosign (a few minutes the first time)"
	cd tools/cosign && CGO_ENABLED=0 go build -o $(COSIGN) github.com/sigstore/cosign/v2/cmd/cosign

# actionlint, built from its module (tools/actionlint), checks the release
# workflow, which cannot run here.
ACTIONLINT := $(BIN)/actionlint

$(ACTIONLINT): tools/actionlint/go.mod tools/actionlint/go.sum
	@mkdir -p $(BIN)
	cd tools/actionlint && go build -o $(ACTIONLINT) github.com/rhysd/actionlint/cmd/actionlint

# staticcheck, built from its module (tools/staticcheck) for make test-unit.
STATICCHECK := $(BIN)/staticcheck

$(STATICCHECK): tools/staticcheck/go.mod tools/staticcheck/go.sum
	@mkdir -p $(BIN)
	cd tools/staticcheck && go build -o $(STATICCHECK) honnef.co/go/tools/cmd/staticcheck

$(IG): tools/ig/go.mod tools/ig/go.sum
	@mkdir -p $(BIN)
	@echo "building ig $(IG_VERSION) (a few minutes the first time)"
	cd tools/ig && CGO_ENABLED=0 go build -o $(IG) \
		-ldflags "-X github.com/inspektor-gadget/inspektor-gadget/internal/version.version=$(IG_VERSION)" \
		github.com/inspektor-gadget/inspektor-gadget/cmd/ig

# The image embeds the BPF objects for amd64 and arm64 and the wasm module;
# $(OUT) keeps the objects so that tests load exactly what the image holds.
vm: $(VM)

$(VM): $(wildcard vm/*.go vm/debian/*.go) vm/go.mod
	@mkdir -p $(BIN)
	cd vm && go build -o $(VM) .

build: deps $(IG)
	@mkdir -p $(OUT)
	$(SUDO) env "PATH=$(PATH)" CLANG=$(CLANG) LLVM_STRIP=$(LLVM_STRIP) \
		$(IG) image build --local -o $(OUT) -t $(IMAGE) .

keys: $(COSIGN)
	@scripts/publish.sh keys $(COSIGN) $(COSIGN_KEY) $(COSIGN_PUB)

push: build
	$(SUDO) env "PATH=$(PATH)" scripts/publish.sh push $(IG) $(IMAGE) $(INSECURE_REGISTRY)

sign: $(COSIGN)
	$(SUDO) env "PATH=$(PATH)" COSIGN_PASSWORD="$${COSIGN_PASSWORD-}" \
		scripts/publish.sh sign $(IG) $(COSIGN) $(IMAGE) $(COSIGN_KEY) $(INSECURE_REGISTRY)

run: build $(VM)
	@RUN_KERNEL=$(RUN_KERNEL) scripts/run.sh $(IMAGE) $(ARGS)

test: build test-unit test-bpf test-core test-integration

# Unit tests of every module, the contract between go/ and the BPF object
# and gadget.yaml, and the linters (gofmt, go vet, staticcheck).
test-unit: build $(STATICCHECK) $(ACTIONLINT)
	cd go && go test ./...
	cd test && go test -count=1 ./contract/ -object $(BPF_OBJ) -gadget-yaml $(CURDIR)/gadget.yaml -makefile $(CURDIR)/Makefile
	cd test && go test -count=1 ./gadgettest/ ./k8s/mkimage/ ./k8s/cluster/
	cd vm && go test ./...
	cd bench && go test ./...
	scripts/lint.sh $(STATICCHECK)
	$(ACTIONLINT) .github/workflows/*.yml

test-bpf:
	cd test && $(SUDO) env "PATH=$(PATH)" go test -count=1 -v ./bpf/ -object $(BPF_OBJ)

# CO-RE relocation of every program of both objects in the image against the
# BTF of each kernel Debian serves (bullseye to experimental, amd64 and
# arm64), loaded here with that kernel's BTF (the tp_btf programs, checked
# by the running kernel against its own types, are relocated only: no
# relocation may be poisoned). The first run downloads the
# kernels and extracts their BTF (a few minutes); after that, seconds.
test-core:
	cd test && $(SUDO) env "PATH=$(PATH)" go test -count=1 -v ./core/ \
		-object-amd64 $(BPF_OBJ) -object-arm64 $(BPF_OBJ_ARM64) \
		-kernel-cache $(CORE_KERNEL_CACHE) -btf-cache $(CORE_BTF_CACHE)
	cd test && go test -count=1 ./core/kbtf/ -btf-cache $(CORE_BTF_CACHE)

# The integration tests run ig and dockerd, which this host's kernel may not
# allow: they run inside each Debian kernel of $(KERNELS) under QEMU, and
# with them, in the same pool of guests, the Kubernetes tests (test-k8s).
test-integration: build $(VM) $(COSIGN) k8s k8s-tests
	cd test && go test -tags integration -c -o $(OUT)/integration.test ./integration/
	cd test && go build -o $(OUT)/loadgen ./loadgen/
	$(SUDO) env "PATH=$(PATH)" JOBS=$(JOBS) PUBLISH_KERNEL=$(PUBLISH_KERNEL) METRICS_KERNEL=$(METRICS_KERNEL) ONE_GUEST_TESTS="$(ONE_GUEST_TESTS)" COSIGN=$(COSIGN) \
		K8S_PARTS=$$(cat $(OUT)/k8s-parts) K8S_TCG=$(K8S_TCG) \
		scripts/integration.sh $(IMAGE) $(KERNELS) k8s@$(K8S_KERNEL)

# kubectl gadget on a single-node Kubernetes cluster (control plane, kubelet,
# containerd, Inspektor Gadget's DaemonSet) inside the guest of $(K8S_KERNEL).
test-k8s: build $(VM) $(COSIGN) k8s k8s-tests
	$(SUDO) env "PATH=$(PATH)" JOBS=1 PUBLISH_KERNEL=$(PUBLISH_KERNEL) METRICS_KERNEL=$(METRICS_KERNEL) ONE_GUEST_TESTS="$(ONE_GUEST_TESTS)" COSIGN=$(COSIGN) \
		K8S_PARTS=$$(cat $(OUT)/k8s-parts) K8S_TCG=$(K8S_TCG) \
		scripts/integration.sh $(IMAGE) k8s@$(K8S_KERNEL)

# The Kubernetes tests' binaries: the guest's test and the host's side.
k8s-tests:
	@mkdir -p $(OUT)
	cd test && go test -tags k8s -c -o $(OUT)/k8s.test ./k8s/ && go build -o $(OUT)/controlplane ./k8s/controlplane/

# The cluster's parts, built from pinned modules and Debian's clang once
# (about 15 minutes on 2 cores) and kept in $(K8S_CACHE); their directory
# is written to $(OUT)/k8s-parts.
k8s: deps
	@mkdir -p $(OUT)
	$(SUDO) env "PATH=$(PATH)" K8S_CACHE=$(K8S_CACHE) IG_VERSION=$(IG_VERSION) CLANG=$(CLANG) \
		scripts/k8s.sh > $(OUT)/k8s-parts.tmp && mv $(OUT)/k8s-parts.tmp $(OUT)/k8s-parts

# IG's own gadget is built only when it is the comparison.
bench: build $(VM) $(if $(filter $(IG_OWN_IMAGE),$(COMPARE_IMAGE)),compare-image)
	$(SUDO) env "PATH=$(PATH)" IMAGE=$(IMAGE) COMPARE_IMAGE=$(COMPARE_IMAGE) CLANG=$(CLANG) LLVM_STRIP=$(LLVM_STRIP) \
		BENCH_RUNS=$(BENCH_RUNS) BENCH_SECONDS=$(BENCH_SECONDS) BENCH_VM_SECONDS=$(BENCH_VM_SECONDS) \
		BENCH_NATIVE_LEVELS=$(BENCH_NATIVE_LEVELS) BENCH_VM_LEVELS=$(BENCH_VM_LEVELS) \
		BENCH_KERNEL=$(BENCH_KERNEL) BENCH_VM=$(BENCH_VM) VM_LOCK=$(VM_LOCK) bench/run.sh

# IG's own trace_tcpretrans from IG's Go module (go env GOMODCACHE, downloaded
# if missing), copied under $(OUT)/ig-own and built with bin/ig; skipped when
# $(IG_OWN_IMAGE) is already in ig's local store.
compare-image: deps $(IG)
	$(SUDO) env "PATH=$(PATH)" IG_VERSION=$(IG_VERSION) CLANG=$(CLANG) LLVM_STRIP=$(LLVM_STRIP) \
		scripts/compare-image.sh $(IG) $(IG_OWN_IMAGE) $(OUT)/ig-own

# README's chart, from the events of TestStorm in the METRICS_KERNEL guest
# of the last make test-integration.
timeline:
	scripts/timeline.sh $(OUT)/timeline-$(METRICS_KERNEL).tsv docs/retransmissions-by-reason.png

export: build
	$(SUDO) $(IG) image export $(IMAGE) $(OUT)/trace_tcpretrans.tar
	@echo "wrote $(OUT)/trace_tcpretrans.tar"

inspect: build
	$(SUDO) $(IG) image inspect $(IMAGE) --verify-image=false --auto-mount-filesystems --extra-info=ebpf.sections
	$(SUDO) $(IG) image inspect $(IMAGE) --verify-image=false --auto-mount-filesystems --extra-info=oci.metadata

clean:
	rm -rf $(OUT)
