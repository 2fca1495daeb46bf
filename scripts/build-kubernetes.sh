#!/usr/bin/env bash
# Builds the Kubernetes binaries the project runs (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy) from Debian bookworm's `kubernetes` source package with Debian's Go, in one make, and caches them
# outside the repository in one folder keyed by version. Prints that folder on its last line.
#
# Why the reflect2 swap: the vendored github.com/modern-go/reflect2 1.0.1 reads runtime internals that changed in
# Go 1.18; an apiserver built with it crashes as soon as it applies a webhook's JSON patch. Debian's
# golang-github-modern-go-reflect2-dev carries 1.0.2, which works.
set -euo pipefail

version=1.20.2
cache_root=${MESH_INJECTOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mesh-injector}
out_dir="$cache_root/kubernetes-v$version"
commands=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
stamp="$out_dir/.complete"
reflect2_src=/usr/share/gocode/src/github.com/modern-go/reflect2

log() { printf '[build-kubernetes] %s\n' "$*" >&2; }

if [ -f "$stamp" ]; then
  log "cached: $out_dir"
  echo "$out_dir"
  exit 0
fi

# One build at a time: a second caller (another test run, `npm start`) waits for the first and takes its result.
mkdir -p "$out_dir"
exec 9>"$out_dir/.build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
if [ -f "$stamp" ]; then
  log "built by the other run: $out_dir"
  echo "$out_dir"
  exit 0
fi

need_root() { [ "$(id -u)" -eq 0 ] || { log "needs root to install $*; run: sudo $0"; exit 1; }; }

ensure_deb_src() {
  if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
    need_root "a deb-src line"
    log "adding a deb-src line for bookworm main"
    cat > /etc/apt/sources.list.d/mesh-injector-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -q >&2
  fi
}

ensure_packages() {
  local missing=()
  command -v go >/dev/null || missing+=(golang-go)
  command -v rsync >/dev/null || missing+=(rsync)
  command -v dpkg-source >/dev/null || missing+=(dpkg-dev)
  [ -d "$reflect2_src" ] || missing+=(golang-github-modern-go-reflect2-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    need_root "${missing[*]}"
    log "installing ${missing[*]}"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
}

ensure_deb_src
ensure_packages

work=$(mktemp -d "${TMPDIR:-/tmp}/kubernetes-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

log "step 1/4: apt-get source kubernetes"
apt-get source -q kubernetes >"$work/source.log" 2>&1 || { cat "$work/source.log" >&2; exit 1; }
src=$(find "$work" -maxdepth 1 -mindepth 1 -type d -name 'kubernetes-*' | head -n 1)
[ -n "$src" ] || { log "apt-get source produced no kubernetes-* directory"; exit 1; }
grep -qF "$version" "$src/debian/changelog" || log "warning: changelog does not mention $version"

log "step 2/4: replacing vendored modern-go/reflect2 with Debian's $(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev) sources"
rm -rf "$src/vendor/github.com/modern-go/reflect2"
mkdir -p "$src/vendor/github.com/modern-go/reflect2"
cp -r "$reflect2_src"/. "$src/vendor/github.com/modern-go/reflect2/"
rm -f "$src/vendor/github.com/modern-go/reflect2/go.mod" "$src/vendor/github.com/modern-go/reflect2/go.sum"

what=$(printf 'cmd/%s ' "${commands[@]}")
log "step 3/4: make WHAT=\"${what% }\" (about 20 minutes on 2 cores)"
# GOPATH layout as debian/rules sets it up: the tree at $GOPATH/src/k8s.io/kubernetes.
gopath="$work/gopath"
mkdir -p "$gopath/src/k8s.io"
ln -s "$src" "$gopath/src/k8s.io/kubernetes"
cd "$gopath/src/k8s.io/kubernetes"
export GOPATH="$gopath" GO111MODULE=off GOFLAGS= GOCACHE="$work/gocache" GOPROXY=off
export KUBE_GIT_VERSION="v$version" KUBE_GIT_TREE_STATE=clean KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20
(
  make WHAT="${what% }" KUBE_VERBOSE=1 >"$work/make.log" 2>&1 &
  pid=$!
  start=$(date +%s)
  while kill -0 "$pid" 2>/dev/null; do
    sleep 20
    kill -0 "$pid" 2>/dev/null && log "  still building ($(( $(date +%s) - start ))s): $(tail -n 1 "$work/make.log" | cut -c1-100)"
  done
  wait "$pid"
) || { tail -n 40 "$work/make.log" >&2; log "build failed"; exit 1; }

log "step 4/4: caching ${commands[*]} in $out_dir"
for command in "${commands[@]}"; do
  built=$(find "$src/_output" -type f -name "$command" -perm -u+x | head -n 1)
  [ -n "$built" ] || { tail -n 40 "$work/make.log" >&2; log "no $command binary was produced"; exit 1; }
  cp "$built" "$out_dir/$command.tmp"
  mv "$out_dir/$command.tmp" "$out_dir/$command"
done
"$out_dir/kube-apiserver" --version >&2
touch "$stamp"
echo "$out_dir"
