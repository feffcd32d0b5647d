#!/usr/bin/env bash
# Builds the end-to-end tier's tools from the Go module proxy, at pinned versions, into a cache
# outside the repository keyed by those versions. A second run finds them and builds nothing.
#
#   e2e/build-tools.sh            build what is missing, then print the bin directory
#   E2E_TOOLS_CACHE=/some/dir     where the cache lives (default ~/.cache/pulumi-k8s-e2e-tools)
#
# The Pulumi CLI and the Kubernetes provider must match the Python SDKs pinned in
# requirements.txt, so their versions are read from there, not repeated here.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${E2E_TOOLS_CACHE:-$HOME/.cache/pulumi-k8s-e2e-tools}

pinned() { sed -n "s/^$1==\([0-9.]*\).*/\1/p" "$root/requirements.txt"; }
PULUMI_VERSION=$(pinned pulumi)
K8S_PROVIDER_VERSION=$(pinned pulumi-kubernetes)

# The proxy serves the provider module (provider/v4) only as a pseudo-version. This one is the
# commit tagged v4.25.0; the sdk/v4.25.0 tag (go mod download -json ...sdk/v4@v4.25.0, Origin)
# sits on its child, which changes nothing under provider/. Update both together.
K8S_PROVIDER_COMMIT_VERSION=4.25.0
K8S_PROVIDER_MODULE_VERSION=v4.0.0-20260115033456-f47bc2d6f199
# A current Kubernetes release; the staging modules k8s.io/* are published as v0.<minor>.<patch>.
KUBERNETES_VERSION=1.35.4

if [ "$K8S_PROVIDER_VERSION" != "$K8S_PROVIDER_COMMIT_VERSION" ]; then
    echo "build-tools: requirements.txt pins pulumi-kubernetes==$K8S_PROVIDER_VERSION but this script" >&2
    echo "builds the provider at $K8S_PROVIDER_COMMIT_VERSION; update K8S_PROVIDER_MODULE_VERSION here." >&2
    exit 2
fi

export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
log() { printf '[build-tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# build NAME VERSION FUNCTION: runs FUNCTION in a fresh work dir unless NAME-VERSION is done.
build() {
    local name=$1 version=$2 fn=$3
    local dest="$cache/$name-$version"
    if [ -f "$dest/.done" ]; then
        return
    fi
    local work="$cache/.work/$name-$version"
    rm -rf "$work" "$dest"
    mkdir -p "$work" "$dest/bin"
    log "building $name $version (first run only; cached in $dest)"
    local started=$SECONDS
    (cd "$work" && "$fn" "$dest/bin")
    echo "$((SECONDS - started))" >"$dest/build-seconds"
    touch "$dest/.done"
    rm -rf "$work"
    log "built $name $version in $((SECONDS - started)) s"
}

pulumi_cli() {
    local out=$1
    # pkg/go.mod replaces sdk/v3 with ../sdk, which `go install pkg@version` refuses: require both
    # at the same version and repeat the replaces that are not local paths.
    cat >go.mod <<MOD
module e2e-tools/pulumi

go 1.26

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
    go get "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
    go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v$PULUMI_VERSION"
    go build -trimpath -o "$out/pulumi" \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
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
    VERSION="$K8S_PROVIDER_VERSION" go run generate.go
    go build -trimpath -o "$out/pulumi-resource-kubernetes" \
        -ldflags "-s -w -X $mod/pkg/version.Version=$K8S_PROVIDER_VERSION" .
}

kubernetes_control_plane() {
    local out=$1
    local minor=${KUBERNETES_VERSION#1.}
    local staging=v0.$minor
    cat >go.mod <<MOD
module e2e-tools/kubernetes

go 1.26
MOD
    go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" >/dev/null
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
    for cmd in kube-apiserver kube-controller-manager; do
        go build -trimpath -o "$out/$cmd" -ldflags "$ld" "k8s.io/kubernetes/cmd/$cmd"
    done
}

build pulumi "$PULUMI_VERSION" pulumi_cli
build pulumi-resource-kubernetes "$K8S_PROVIDER_VERSION" kubernetes_provider
build kubernetes "$KUBERNETES_VERSION" kubernetes_control_plane

for d in "pulumi-$PULUMI_VERSION" "pulumi-resource-kubernetes-$K8S_PROVIDER_VERSION" "kubernetes-$KUBERNETES_VERSION"; do
    printf '%s\n' "$cache/$d/bin"
done
