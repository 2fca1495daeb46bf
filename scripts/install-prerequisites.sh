#!/usr/bin/env bash
# Installs the Debian packages mesh-injector's control plane and kernel tests use. Idempotent; needs root.
#   scripts/install-prerequisites.sh               everything (CI)
#   scripts/install-prerequisites.sh control-plane etcd and kubectl only (npm start)
# With `all`, it also installs Node.js 24 LTS (scripts/install-node.sh) when the node on PATH is another major.
set -euo pipefail
scope=${1:-all}
log() { printf '[install-prerequisites] %s\n' "$*" >&2; }

if [ "$scope" = all ] && [ "$(node --version 2>/dev/null | cut -d. -f1)" != v24 ]; then
  bash "$(dirname "$0")/install-node.sh"
  hash -r
fi

packages=()
command -v etcd >/dev/null || packages+=(etcd-server)
# kubectl from Debian only when none is installed: another kubectl may own /usr/bin/kubectl.
command -v kubectl >/dev/null || packages+=(kubernetes-client)
if [ "$scope" = all ]; then
  # The kube-apiserver build (scripts/build-kubernetes.sh) and the kernel tests.
  command -v go >/dev/null || packages+=(golang-go)
  command -v rsync >/dev/null || packages+=(rsync)
  command -v dpkg-source >/dev/null || packages+=(dpkg-dev)
  [ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] || packages+=(golang-github-modern-go-reflect2-dev)
  command -v haproxy >/dev/null || packages+=(haproxy)
  command -v iptables-legacy-restore >/dev/null || packages+=(iptables)
  command -v ip >/dev/null || packages+=(iproute2)
  command -v gcc >/dev/null || packages+=(gcc libc6-dev)
  # The images (scripts/build-images.sh) and the local node (test/harness/node-cluster.ts).
  command -v buildah >/dev/null || packages+=(buildah)
  command -v debootstrap >/dev/null || packages+=(debootstrap)
  command -v openssl >/dev/null || packages+=(openssl)
  command -v containerd >/dev/null && command -v ctr >/dev/null || packages+=(containerd)
  command -v runc >/dev/null || packages+=(runc)
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/portmap ] ||
    packages+=(containernetworking-plugins)
  command -v conntrack >/dev/null || packages+=(conntrack)
  command -v nsenter >/dev/null && command -v setpriv >/dev/null || packages+=(util-linux)
  # `npm run bench` runs its servers on the allocator the webhook image preloads (bench/server-runtime.ts).
  /sbin/ldconfig -p | grep -q 'libjemalloc\.so\.2 ' || packages+=(libjemalloc2)
fi

if [ ${#packages[@]} -eq 0 ]; then
  log "nothing to install"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  log "missing: ${packages[*]}; run as root: sudo $0 $scope"
  exit 1
fi
log "installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${packages[@]}" >&2
