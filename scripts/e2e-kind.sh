#!/usr/bin/env bash
# The end-to-end suite (test/e2e, `npm run e2e`) on a throwaway kind cluster, with real Envoy: builds the webhook
# and init images (Dockerfile targets) and the demo image (test/images/demo) with docker, loads them into the
# cluster, installs manifests/ with those images (`kubectl apply -k` of an overlay that sets only the image names),
# then runs the same suite as on the local node, through E2E_KUBECONFIG. No assertions of its own.
#
# Needs docker (with a reachable daemon), kind, kubectl and gcc; without them it says what is missing and exits 0
# without claiming a pass. The nodes pull Envoy from its public registry.
#
#   npm run e2e:kind                       # KIND_NODE_IMAGE=kindest/node:vX.Y.Z to choose the Kubernetes version
#   E2E_KEEP_CLUSTER=1 npm run e2e:kind    # keep the cluster afterwards, for a look around
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
fail() {
  printf '\nFAIL: %s\n' "$*" >&2
  exit 1
}
not_run() {
  printf 'e2e-kind did not run: %s\nThis is not a pass: nothing was tested.\n' "$*"
  exit 0
}

missing=()
for tool in docker kind kubectl gcc; do
  command -v "$tool" > /dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  not_run "missing ${missing[*]} (install Docker, kind from https://kind.sigs.k8s.io, kubectl and gcc, then rerun)"
fi
if ! docker version --format '{{.Server.Version}}' > /dev/null 2>&1; then
  not_run "the Docker daemon is unreachable ('docker version' cannot reach the server; start Docker, or check DOCKER_HOST and your permissions)"
fi

run_id="$(date +%s)-$$"
cluster="mesh-injector-e2e-$run_id"
webhook_image="mesh-injector-e2e/webhook:$run_id"
init_image="mesh-injector-e2e/mesh-iptables:$run_id"
demo_image="mesh-injector-e2e/demo:$run_id"
work="$(mktemp -d "${TMPDIR:-/tmp}/mesh-injector-e2e.XXXXXX")"
export KUBECONFIG="$work/kubeconfig"
cluster_created=false

diagnose() {
  say "diagnostics"
  kubectl get pods -A -o wide || true
  kubectl -n mesh-injector logs deployment/mesh-injector --all-containers --tail=50 || true
}

cleanup() {
  local status=$?
  if [ "$cluster_created" = true ]; then
    [ "$status" -ne 0 ] && diagnose
    if [ "${E2E_KEEP_CLUSTER:-}" = 1 ]; then
      printf '\nKept cluster %s (KUBECONFIG=%s); delete it with: kind delete cluster --name %s\n' \
        "$cluster" "$KUBECONFIG" "$cluster"
    else
      kind delete cluster --name "$cluster" > /dev/null 2>&1 || printf 'could not delete kind cluster %s\n' "$cluster"
    fi
  fi
  docker image rm "$webhook_image" "$init_image" "$demo_image" > /dev/null 2>&1 || true
  [ "${E2E_KEEP_CLUSTER:-}" = 1 ] || rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

say "images: $webhook_image, $init_image, $demo_image"
docker build --target webhook -t "$webhook_image" .
docker build --target init -t "$init_image" .
cp -R test/images/demo "$work/demo"
gcc -static -O2 -o "$work/demo/mesh-demo-echo" "$work/demo/mesh-demo-echo.c"
docker build -f "$work/demo/Containerfile" -t "$demo_image" "$work/demo"

say "kind cluster $cluster"
kind_args=(create cluster --name "$cluster" --kubeconfig "$KUBECONFIG" --wait 180s)
[ -n "${KIND_NODE_IMAGE:-}" ] && kind_args+=(--image "$KIND_NODE_IMAGE")
cluster_created=true
kind "${kind_args[@]}"
kind load docker-image --name "$cluster" "$webhook_image" "$init_image" "$demo_image"
kubectl version

say "install manifests/ with the images just built (kubectl apply -k)"
# The webhook image, and the init image it injects, through kustomize's images: (the Deployment's image and its
# MESH_INJECTOR_INIT_IMAGE, manifests/kustomizeconfig.yaml). Everything else, Envoy included, is manifests/ as it is.
webhook_repository="$(sed -n 's/^ *image: *\([^:]*\):.*/\1/p' manifests/deployment.yaml | head -n 1)"
init_repository="$(sed -n '/name: MESH_INJECTOR_INIT_IMAGE/{n;s/^ *value: *\([^:]*\):.*/\1/p;}' manifests/deployment.yaml)"
[ -n "$webhook_repository" ] || fail "no image found in manifests/deployment.yaml"
[ -n "$init_repository" ] || fail "no MESH_INJECTOR_INIT_IMAGE found in manifests/deployment.yaml"
mkdir "$work/overlay"
cat > "$work/overlay/kustomization.yaml" << EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [$(realpath --relative-to="$work/overlay" manifests)]
images:
  - name: $webhook_repository
    newName: ${webhook_image%:*}
    newTag: ${webhook_image##*:}
  - name: $init_repository
    newName: ${init_image%:*}
    newTag: ${init_image##*:}
EOF
kubectl apply -k "$work/overlay"
kubectl -n mesh-injector rollout status deployment/mesh-injector --timeout=180s

say "the end-to-end suite (test/e2e), against this cluster"
E2E_KUBECONFIG="$KUBECONFIG" \
  E2E_DEMO_IMAGE="$demo_image" \
  E2E_KILL_CONTAINER="docker exec $cluster-control-plane ctr -n k8s.io tasks kill --signal SIGKILL" \
  npm run e2e

printf '\nPASS: the e2e suite on kind (cluster %s)\n' "$cluster"
