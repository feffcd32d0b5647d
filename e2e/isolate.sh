#!/usr/bin/env bash
# Runs a command (the end-to-end tests) where a real kubelet and containerd can run, and leaves
# the machine as it found it.
#
#   e2e/isolate.sh COMMAND...     (make e2e runs the tests this way; run it as root, under
#                                  `flock /tmp/e2e.lock`: it uses host-global paths)
#   E2E_WORKERS=N e2e/isolate.sh COMMAND...
#                                 N copies of COMMAND side by side, each in namespaces and a
#                                 cgroup of its own (its own node), told E2E_WORKER=1..N; the
#                                 host is saved and put back once, around all of them
#
# The command runs in namespaces of its own, so nothing of the node reaches the host:
# - a network namespace: the node's address on a veth pair (the kubelet refuses loopback, and
#   this kernel has no dummy links), the pods' bridge, kube-proxy's rules, every server the
#   tests start; the host's links, routes and firewall are not touched;
# - a mount namespace with private propagation: the paths the kubelet and containerd use
#   (/var/lib/kubelet, /var/lib/containerd, /run/containerd, /var/lib/cni, /etc/cni,
#   /var/log/pods, /var/log/containers) are bind mounts of a run directory, and every mount
#   made inside (overlays, volumes, pod network namespaces) ends with the namespace;
# - a PID namespace: when the command ends, the kernel kills every process left inside
#   (containers and shims included).
# Outside, in one cgroup of each v1 hierarchy (the kubelet's cgroupRoot), and on the way out:
# whatever is left in it is killed, the cgroups are removed, the kernel settings the kubelet
# changes are put back, the directories made for the mounts are removed, and the host's
# links, mounts, cgroups and kernel settings are compared with what they were.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
NAME=ideaforge-e2e
CGROUP_ROOT=/sys/fs/cgroup
NODE_PATHS=(/var/lib/kubelet /var/lib/containerd /run/containerd /var/lib/cni /etc/cni /var/log/pods /var/log/containers)
# What the kubelet sets at start (pkg/kubelet/cm: setupKernelTunables) and kube-proxy may set.
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
    kernel.keys.root_maxbytes net.netfilter.nf_conntrack_max)
# Counters and per-boot values that change by themselves.
VOLATILE='^(fs\.(dentry-state|file-nr|inode-nr|inode-state|quota\.)|kernel\.(random\.|ns_last_pid|pty\.nr|tainted)|net\.netfilter\.nf_conntrack_count|vm\.(nr_|stat))'

if [ "${1:-}" = "--inside" ]; then
    shift
    run=$1
    shift
    # The node's network: its address, forwarding for the pods' Service traffic, and
    # bridged pod-to-pod replies through conntrack (kube-proxy's Service NAT).
    ip link set lo up
    ip link add e2e-node type veth peer name e2e-peer
    ip addr add "$E2E_NODE_IP/24" dev e2e-node
    ip link set e2e-node up
    ip link set e2e-peer up
    ip route add blackhole default  # nothing leaves; a default route keeps the node's tools content
    sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
    # sysfs of this network namespace (the CNI bridge plugin reads its links there), keeping
    # the cgroup hierarchies mounted below it.
    mkdir -p "$run/cgroup"
    mount --rbind "$CGROUP_ROOT" "$run/cgroup"
    mount -t sysfs sysfs /sys
    mount --move "$run/cgroup" "$CGROUP_ROOT"
    for path in "${NODE_PATHS[@]}"; do
        mkdir -p "$run/fs$path"
        mount --bind "$run/fs$path" "$path"
    done
    export PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-} --basetemp=$run/pytest"
    "$@" &
    child=$!
    trap 'kill -TERM $child 2>/dev/null' TERM INT
    set +e
    wait $child
    status=$?
    while kill -0 $child 2>/dev/null; do  # a trapped signal ended the wait, not the command
        wait $child
        status=$?
    done
    exit $status
fi

if [ "$(id -u)" != 0 ]; then
    echo "e2e/isolate.sh: the node needs root (mounts, namespaces, cgroups)" >&2
    exit 2
fi
[ $# -gt 0 ] || { echo "usage: e2e/isolate.sh COMMAND..." >&2; exit 2; }

run=$(mktemp -d "/var/tmp/$NAME.XXXXXX")
workers=${E2E_WORKERS:-1}
[[ "$workers" =~ ^[1-9]$ ]] || { echo "e2e/isolate.sh: E2E_WORKERS must be 1 to 9, not $workers" >&2; exit 2; }
export E2E_NODE_IP=${E2E_NODE_IP:-10.213.0.2} E2E_ISOLATED=1 E2E_WORKERS=$workers

snapshot() {
    ip -o link show | sed 's/ state [A-Z]*.*//' | sort >"$1.links"
    awk '{print $5}' /proc/self/mountinfo | sort >"$1.mounts"
    # Only what the node could have made (its cgroupRoot, the kubelet's QoS tree, containerd's
    # namespace): the machine is shared, and other processes make cgroups of their own meanwhile.
    find "$CGROUP_ROOT" -mindepth 2 -type d 2>/dev/null | grep -E "/($NAME|kubepods[^/]*|k8s\.io)(/|\$)" | sort \
        >"$1.cgroups" || true
    sysctl -a 2>/dev/null | grep -Ev "$VOLATILE" | sort >"$1.sysctl"
}
snapshot "$run/before"
created=()
for path in "${NODE_PATHS[@]}"; do
    if [ ! -e "$path" ]; then
        mkdir -p "$path"
        created+=("$path")
    fi
done
hierarchies=()
for h in "$CGROUP_ROOT"/*/; do
    h=${h%/}
    [ -L "$h" ] && continue
    grep -q " $h " /proc/self/mounts || continue
    mkdir -p "$h/$NAME"
    hierarchies+=("$h")
done
# One cgroup per worker below the run's (each worker's node has its own cgroupRoot); cpuset
# children start with no CPUs and no memory nodes.
for k in $(seq 1 "$workers"); do
    for h in "${hierarchies[@]}"; do
        mkdir -p "$h/$NAME/w$k"
    done
done
if [ -d "$CGROUP_ROOT/cpuset/$NAME" ]; then
    for dir in "$CGROUP_ROOT/cpuset/$NAME" "$CGROUP_ROOT"/cpuset/$NAME/w*; do
        cat "$CGROUP_ROOT/cpuset/cpuset.cpus" >"$dir/cpuset.cpus"
        cat "$CGROUP_ROOT/cpuset/cpuset.mems" >"$dir/cpuset.mems"
    done
fi

cleanup() {
    local status=$?
    set +e
    trap - EXIT INT TERM
    # Anything still alive in the node's cgroups (the PID namespace ended with its first
    # process; this is for what escaped it).
    for round in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(cat "$CGROUP_ROOT"/pids/$NAME/cgroup.procs $(find "$CGROUP_ROOT/pids/$NAME" -name cgroup.procs 2>/dev/null) 2>/dev/null | sort -u)
        [ -z "$pids" ] && break
        kill -KILL $pids 2>/dev/null
        sleep 0.5
    done
    for h in "${hierarchies[@]}"; do
        find "$h/$NAME" -depth -type d -exec rmdir {} \; 2>/dev/null
        [ -d "$h/$NAME" ] && echo "e2e/isolate.sh: cgroup $h/$NAME could not be removed" >&2
    done
    for key in "${SYSCTLS[@]}"; do
        value=$(grep "^$key = " "$run/before.sysctl" | sed "s/^$key = //")
        [ -n "$value" ] && sysctl -qw "$key=$value" 2>/dev/null
    done
    for path in "${created[@]}"; do
        rmdir "$path" 2>/dev/null || echo "e2e/isolate.sh: $path is not empty; left in place" >&2
    done
    snapshot "$run/after"
    local left=0
    for what in links mounts cgroups sysctl; do
        if ! diff -q "$run/before.$what" "$run/after.$what" >/dev/null; then
            echo "e2e/isolate.sh: the host's $what differ from before the run:" >&2
            diff "$run/before.$what" "$run/after.$what" | sed 's/^/  /' >&2
            left=1
        fi
    done
    if [ -n "${E2E_KEEP_RUN_DIR:-}" ]; then
        echo "e2e/isolate.sh: run directory kept: $run" >&2
    else
        rm -rf "$run"
    fi
    if [ $left = 0 ]; then
        echo "e2e/isolate.sh: host state restored (links, mounts, cgroups, kernel settings)" >&2
    elif [ $status = 0 ]; then
        status=1
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Each worker joins its node's cgroups before it unshares, so everything it starts is in them.
start_worker() {
    local k=$1
    shift
    local join=""
    for h in "${hierarchies[@]}"; do
        join+="echo \$\$ >$h/$NAME/w$k/cgroup.procs; "
    done
    mkdir -p "$run/w$k"
    E2E_WORKER=$k E2E_RUN_DIR=$run/w$k E2E_CGROUP_ROOT=/$NAME/w$k sh -c "$join exec \"\$@\"" sh \
        unshare --net --mount --propagation private --pid --fork --mount-proc -- \
        "$here/isolate.sh" --inside "$run/w$k" "$@"
}
set +e
if [ "$workers" = 1 ]; then
    start_worker 1 "$@"
    status=$?
else
    # Side by side, each worker's output kept apart and shown whole when it ends.
    pids=()
    for k in $(seq 1 "$workers"); do
        start_worker "$k" "$@" >"$run/w$k.log" 2>&1 &
        pids+=($!)
        echo "e2e/isolate.sh: worker $k of $workers started (its output follows when it ends)" >&2
    done
    status=0
    for k in $(seq 1 "$workers"); do
        wait "${pids[$((k - 1))]}"
        code=$?
        echo "===== e2e worker $k of $workers: exit $code =====" >&2
        cat "$run/w$k.log"
        [ "$code" = 0 ] || status=$code
    done
fi
set -e
exit $status
