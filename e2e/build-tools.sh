#!/usr/bin/env bash
# Builds the end-to-end tier's tools from the Go module proxy, at pinned versions, into a cache
# outside the repository keyed by those versions. A second run finds them and builds nothing.
#
#   e2e/build-tools.sh            build what is missing, then print the bin directories
#   E2E_TOOLS_CACHE=/some/dir     where the cache lives (default ~/.cache/pulumi-k8s-e2e-tools)
#
# Each tool lands in $cache/<name>-<version>/bin, with build-seconds, build-cpu-seconds and
# build.log beside it (README, "Tests", quotes the figures of a cold build).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${E2E_TOOLS_CACHE:-$HOME/.cache/pulumi-k8s-e2e-tools}

# The CLI and its language host: the newest github.com/pulumi/pulumi/pkg/v3 the proxy serves.
# Pinned here rather than read from requirements.txt: the CLI talks to the Python SDK over a
# versioned gRPC protocol, so a newer CLI runs an older SDK, and the proxy does not serve every
# release PyPI has (pkg/v3 v3.270.0 is missing), so the two cannot always be the same number.
PULUMI_CLI_VERSION=3.276.0
# The language host's source, unmodified upstream (README beside it): not served by the proxy.
LANGUAGE_HOST_SRC=$root/../shared/third_party/pulumi-language-python

pinned() { sed -n "s/^$1==\([0-9.]*\).*/\1/p" "$root/requirements.txt"; }
K8S_PROVIDER_VERSION=$(pinned pulumi-kubernetes)

# The provider must match the pulumi-kubernetes SDK in requirements.txt. The proxy serves the
# provider module (provider/v4) only as a pseudo-version, and only at this one commit: the one
# tagged v4.25.0; the sdk/v4.25.0 tag (go mod download -json ...sdk/v4@v4.25.0, Origin) sits on
# its child, which changes nothing under provider/. Update both together.
K8S_PROVIDER_COMMIT_VERSION=4.25.0
K8S_PROVIDER_MODULE_VERSION=v4.0.0-20260115033456-f47bc2d6f199
# A current Kubernetes release whose kubelet still runs on cgroup v1 (failCgroupV1: false), which
# is all this machine has; the staging modules k8s.io/* are published as v0.<minor>.<patch>.
KUBERNETES_VERSION=1.35.4
# Service-name DNS for the pods: the newest CoreDNS release the proxy serves.
COREDNS_VERSION=1.15.0

if [ "$K8S_PROVIDER_VERSION" != "$K8S_PROVIDER_COMMIT_VERSION" ]; then
    echo "build-tools: requirements.txt pins pulumi-kubernetes==$K8S_PROVIDER_VERSION but this script" >&2
    echo "builds the provider at $K8S_PROVIDER_COMMIT_VERSION; update K8S_PROVIDER_MODULE_VERSION here." >&2
    exit 2
fi

export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
# No DWARF from the compiler: the linker strips it anyway (-s -w), and a cold CoreDNS build took
# 10-13 % less CPU without it (BENCHMARKS.md, "CI time"). Go's stack traces read its own tables, kept.
NO_DWARF=-gcflags=all=-dwarf=false
log() { printf '[build-tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# build NAME VERSION FUNCTION: runs FUNCTION in a fresh work dir unless NAME-VERSION is done, and
# records its wall and CPU seconds (user + system of everything it ran) beside the binaries.
build() {
    local name=$1 version=$2 fn=$3
    local dest="$cache/$name-$version"
    if [ -f "$dest/.done" ]; then
        return
    fi
    local work="$cache/.work/$name-$version"
    local output="$cache/.work/$name-$version.log"
    rm -rf "$work" "$dest"
    mkdir -p "$work" "$dest/bin"
    log "building $name $version (first run only; cached in $dest)"
    local started=$SECONDS
    # In the background and waited for: in a condition, bash would ignore `set -e` inside it. Its
    # last act, `times`, prints the CPU time of all it ran.
    (cd "$work"; "$fn" "$dest/bin"; times >"$work.times") >"$output" 2>&1 &
    if ! wait $!; then
        log "building $name $version failed; the end of its output ($output):"
        tail -n 40 "$output" >&2
        return 1
    fi
    echo "$((SECONDS - started))" >"$dest/build-seconds"
    tail -n 1 "$work.times" | awk '{ for (i = 1; i <= NF; i++) { split($i, t, "m"); s += t[1] * 60 + t[2] }
        printf "%d\n", s }' >"$dest/build-cpu-seconds"
    rm -f "$work.times"
    mv "$output" "$dest/build.log"
    touch "$dest/.done"
    rm -rf "$work"
    log "built $name $version in $((SECONDS - started)) s ($(cat "$dest/build-cpu-seconds") s of CPU)"
}

# A module that requires pkg/v3 and sdk/v3 at the CLI version. pkg/go.mod replaces sdk/v3 with
# ../sdk, which `go install pkg@version` refuses: require both and repeat the replaces that are
# not local paths.
pulumi_module() {
    cat >go.mod <<MOD
module e2e-tools/$1

go 1.26

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
    go get "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_CLI_VERSION" "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_CLI_VERSION"
}

pulumi_ldflags() {
    echo "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_CLI_VERSION"
}

pulumi_cli() {
    local out=$1
    pulumi_module pulumi
    go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v$PULUMI_CLI_VERSION"
    go build -trimpath $NO_DWARF -o "$out/pulumi" -ldflags "$(pulumi_ldflags)" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
}

# Its own cache entry: it builds from a source outside the proxy, and on PATH beside the CLI it
# is the host the CLI starts for `runtime: python` (the exec shim must sit beside the binary).
pulumi_language_python() {
    local out=$1
    pulumi_module pulumi-language-python
    mkdir cmd
    cp "$LANGUAGE_HOST_SRC/main.go" cmd/
    go build -trimpath $NO_DWARF -o "$out/pulumi-language-python" -ldflags "$(pulumi_ldflags)" ./cmd
    cp "$LANGUAGE_HOST_SRC/pulumi-language-python-exec" "$out/"
    chmod 0755 "$out/pulumi-language-python-exec"
}

kubernetes_provider() {
    local out=$1
    cat >go.mod <<MOD
module e2e-tools/pulumi-resource-kubernetes

go 1.26
MOD
    local mod=github.com/pulumi/pulumi-kubernetes/provider/v4
    # provider/go.mod replaces sdk/v4 with ../sdk: require the tagged sdk module instead.
    go get "$mod@$K8S_PROVIDER_MODULE_VERSION" "github.com/pulumi/pulumi-kubernetes/sdk/v4@v$K8S_PROVIDER_VERSION"
    local src
    src=$(go list -m -f '{{.Dir}}' "$mod")
    # main.go embeds schema-embed.json, which its generate.go derives from schema.json; the module
    # cache is read-only, so the main package is built from a copy.
    cp "$src/cmd/pulumi-resource-kubernetes/"{main.go,generate.go,schema.json,terraform-mapping.json} .
    chmod u+w ./*
    # Built with the flags of the build below: its packages (pkg/v3 codegen) are then compiled once.
    VERSION="$K8S_PROVIDER_VERSION" go run $NO_DWARF generate.go
    go build -trimpath $NO_DWARF -o "$out/pulumi-resource-kubernetes" \
        -ldflags "-s -w -X $mod/pkg/version.Version=$K8S_PROVIDER_VERSION" .
}

kubernetes() {
    local out=$1
    local minor=${KUBERNETES_VERSION#1.}
    local staging=v0.$minor
    cat >go.mod <<MOD
module e2e-tools/kubernetes

go 1.26
MOD
    local kmod
    kmod=$(go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    # k8s.io/kubernetes points every staging module at ./staging/src/...: use the published ones.
    sed -n 's#^\s*\(k8s\.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$kmod" | while read -r m; do
        echo "replace $m => $m $staging" >>go.mod
    done
    go get "k8s.io/kubernetes@v$KUBERNETES_VERSION"
    local pkg=k8s.io/component-base/version
    local ld="-s -w -X $pkg.gitVersion=v$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*}"
    ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    # One invocation: the five share most of their packages, which are then compiled once, and
    # `go build` schedules all of them across the cores together.
    local cmds=()
    for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
        cmds+=("k8s.io/kubernetes/cmd/$cmd")
    done
    go build -trimpath $NO_DWARF -o "$out/" -ldflags "$ld" "${cmds[@]}"
}

# Only the plugins the cluster's Corefile uses (tests/e2e/coredns.py), as CoreDNS documents for
# a build of its own (plugin.cfg; here a main package that imports them): the full set brings
# the cloud providers' SDKs, etcd, tracing and more, about half of CoreDNS's build time.
COREDNS_PLUGINS=(errors health ready kubernetes cache loadbalance)
COREDNS_BUILD=$COREDNS_VERSION-$(printf '%s\n' "${COREDNS_PLUGINS[@]}" | sha256sum | cut -c1-8)

coredns() {
    local out=$1
    cat >go.mod <<MOD
module e2e-tools/coredns

go 1.26
MOD
    {
        echo "package main"
        echo
        echo "import ("
        echo "	\"github.com/coredns/coredns/coremain\""
        for plugin in "${COREDNS_PLUGINS[@]}"; do
            echo "	_ \"github.com/coredns/coredns/plugin/$plugin\""
        done
        echo ")"
        echo
        echo "func main() { coremain.Run() }"
    } >main.go
    go get "github.com/coredns/coredns@v$COREDNS_VERSION"
    go build -trimpath $NO_DWARF -o "$out/coredns" \
        -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=v$COREDNS_VERSION" .
}

# The tools share no module versions, so no compiled package: built side by side, one fills the
# cores while another waits on downloads, links (one core) or a big package's compile (one core).
# The language host follows the CLI, whose packages it reuses from the build cache.
pids=()
(
    build pulumi "$PULUMI_CLI_VERSION" pulumi_cli
    build pulumi-language-python "$PULUMI_CLI_VERSION" pulumi_language_python
) &
pids+=($!)
build pulumi-resource-kubernetes "$K8S_PROVIDER_VERSION" kubernetes_provider &
pids+=($!)
build kubernetes "$KUBERNETES_VERSION" kubernetes &
pids+=($!)
build coredns "$COREDNS_BUILD" coredns &
pids+=($!)
failed=0
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done
[ "$failed" = 0 ] || exit 1

for d in "pulumi-$PULUMI_CLI_VERSION" "pulumi-language-python-$PULUMI_CLI_VERSION" \
    "pulumi-resource-kubernetes-$K8S_PROVIDER_VERSION" "kubernetes-$KUBERNETES_VERSION" \
    "coredns-$COREDNS_BUILD"; do
    printf '%s\n' "$cache/$d/bin"
done
