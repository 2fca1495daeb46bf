#!/usr/bin/env bash
# End to end on a throwaway kind cluster: build both images (Dockerfile targets webhook and init), load them into
# the cluster, install manifests/ with those images, and check that a labelled namespace gets sidecars that carry
# traffic through Envoy, while an unlabelled one is left alone. Prints PASS on success.
#
# Needs docker (with a reachable daemon), kind and kubectl; without them it says what is missing and exits 0
# without claiming a pass. The nodes pull Envoy, agnhost and curl from their public registries.
#
#   npm run e2e:kind                       # KIND_NODE_IMAGE=kindest/node:vX.Y.Z to choose the Kubernetes version
#   E2E_KEEP_CLUSTER=1 npm run e2e:kind    # keep the cluster afterwards, for a look around
set -euo pipefail
cd "$(dirname "$0")/.."

readonly MESH_NS=e2e-mesh PLAIN_NS=e2e-plain
readonly AGNHOST=registry.k8s.io/e2e-test-images/agnhost:2.53 CURL=curlimages/curl:8.16.0
readonly OUTBOUND_LISTENER=0.0.0.0_15001 INBOUND_LISTENER=0.0.0.0_15006 STATS_PORT=15090 REQUESTS=3

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
for tool in docker kind kubectl; do
  command -v "$tool" > /dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  not_run "missing ${missing[*]} (install Docker, kind from https://kind.sigs.k8s.io and kubectl, then rerun)"
fi
if ! docker version --format '{{.Server.Version}}' > /dev/null 2>&1; then
  not_run "the Docker daemon is unreachable ('docker version' cannot reach the server; start Docker, or check DOCKER_HOST and your permissions)"
fi

run_id="$(date +%s)-$$"
cluster="mesh-injector-e2e-$run_id"
webhook_image="mesh-injector-e2e/webhook:$run_id"
init_image="mesh-injector-e2e/mesh-iptables:$run_id"
work="$(mktemp -d "${TMPDIR:-/tmp}/mesh-injector-e2e.XXXXXX")"
export KUBECONFIG="$work/kubeconfig"
cluster_created=false

diagnose() {
  say "diagnostics"
  kubectl get pods -A -o wide || true
  kubectl -n mesh-injector logs deployment/mesh-injector --all-containers --tail=50 || true
  for pod in client echo; do
    kubectl -n "$MESH_NS" describe pod "$pod" | tail -n 30 || true
    kubectl -n "$MESH_NS" logs "$pod" -c istio-init --tail=30 || true
    kubectl -n "$MESH_NS" logs "$pod" -c istio-proxy --tail=30 || true
  done
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
  docker image rm "$webhook_image" "$init_image" > /dev/null 2>&1 || true
  [ "${E2E_KEEP_CLUSTER:-}" = 1 ] || rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# Runs a command until it succeeds: the webhook may refuse pods for a moment after its Service gets endpoints.
retry() {
  local attempt
  for attempt in $(seq 1 30); do
    "$@" && return 0
    printf '  (attempt %s failed; retrying)\n' "$attempt"
    sleep 2
  done
  return 1
}

# The value of a Prometheus counter in the pod's Envoy stats (0 when absent), read through the apiserver's pod proxy.
envoy_counter() {
  local pod=$1 metric=$2 label=$3
  kubectl get --raw "/api/v1/namespaces/$MESH_NS/pods/$pod:$STATS_PORT/proxy/stats/prometheus" |
    awk -v metric="$metric" -v label="$label" '
      index($0, metric "{") == 1 && index($0, label) > 0 { total += $NF }
      END { printf "%d\n", total }'
}

say "images: $webhook_image, $init_image"
docker build --target webhook -t "$webhook_image" .
docker build --target init -t "$init_image" .

say "kind cluster $cluster"
kind_args=(create cluster --name "$cluster" --kubeconfig "$KUBECONFIG" --wait 180s)
[ -n "${KIND_NODE_IMAGE:-}" ] && kind_args+=(--image "$KIND_NODE_IMAGE")
cluster_created=true
kind "${kind_args[@]}"
kind load docker-image --name "$cluster" "$webhook_image" "$init_image"
kubectl version

say "install manifests/ with the images just built"
# A copy of manifests/ as the base of an overlay: the webhook image through kustomize's images, the init image in
# the copy's values.yaml (it reaches pods through the injector's ConfigMap, not through a pod spec).
cp -R manifests "$work/base"
sed "s#^  init: .*#  init: $init_image#" manifests/config/values.yaml > "$work/base/config/values.yaml"
grep -q "^  init: $init_image\$" "$work/base/config/values.yaml" ||
  fail "could not set images.init in values.yaml (its layout changed?)"
webhook_repository="$(sed -n 's/^ *image: *\([^:]*\):.*/\1/p' manifests/deployment.yaml | head -n 1)"
[ -n "$webhook_repository" ] || fail "no image found in manifests/deployment.yaml"
mkdir "$work/overlay"
cat > "$work/overlay/kustomization.yaml" << EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../base]
images:
  - name: $webhook_repository
    newName: ${webhook_image%:*}
    newTag: ${webhook_image##*:}
EOF
kubectl apply -k "$work/overlay"

say "wait for the webhook Deployment and its caBundle"
kubectl -n mesh-injector rollout status deployment/mesh-injector --timeout=180s
ca_ready=false
for _ in $(seq 1 60); do
  bundles="$(kubectl get mutatingwebhookconfiguration mesh-injector \
    -o jsonpath='{range .webhooks[*]}{.clientConfig.caBundle}{"\n"}{end}')"
  if [ -n "$bundles" ] && ! grep -qx '' <<< "$bundles"; then
    ca_ready=true
    break
  fi
  sleep 2
done
[ "$ca_ready" = true ] || fail "the MutatingWebhookConfiguration never got a caBundle in every webhook"

say "a labelled namespace with an HTTP echo server and a curl client"
kubectl create namespace "$MESH_NS"
kubectl label namespace "$MESH_NS" istio-injection=enabled
kubectl create namespace "$PLAIN_NS"
# The server has no probes of its own, so its inbound listener counts only the client's connections.
cat > "$work/mesh-workloads.yaml" << EOF
apiVersion: v1
kind: Pod
metadata: { name: echo, namespace: $MESH_NS, labels: { app: echo } }
spec:
  containers:
    - name: echo
      image: $AGNHOST
      args: [netexec, --http-port=8080]
      ports: [{ containerPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: $MESH_NS }
spec:
  selector: { app: echo }
  ports: [{ name: http, port: 8080, targetPort: 8080 }]
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: $MESH_NS, labels: { app: client } }
spec:
  containers:
    - name: client
      image: $CURL
      command: [sleep, '3600']
EOF
retry kubectl apply -f "$work/mesh-workloads.yaml"
kubectl apply -f - << EOF
apiVersion: v1
kind: Pod
metadata: { name: plain, namespace: $PLAIN_NS }
spec:
  containers:
    - name: plain
      image: $AGNHOST
      args: [pause]
EOF
kubectl -n "$MESH_NS" wait --for=condition=Ready pod/echo pod/client --timeout=300s

say "both pods got istio-init and istio-proxy"
for pod in echo client; do
  names="$(kubectl -n "$MESH_NS" get pod "$pod" \
    -o jsonpath='{range .spec.initContainers[*]}{.name}{" "}{end}{range .spec.containers[*]}{.name}{" "}{end}')"
  printf '  %s: %s\n' "$pod" "$names"
  for injected in istio-init istio-proxy; do
    grep -qw -- "$injected" <<< "$names" || fail "pod $pod has no $injected (containers: $names)"
  done
done

say "requests from client to echo pass through both proxies"
out_before="$(envoy_counter client envoy_listener_downstream_cx_total "envoy_listener_address=\"$OUTBOUND_LISTENER\"")"
in_before="$(envoy_counter echo envoy_listener_downstream_cx_total "envoy_listener_address=\"$INBOUND_LISTENER\"")"
for _ in $(seq 1 "$REQUESTS"); do
  answer="$(kubectl -n "$MESH_NS" exec client -c client -- \
    curl -sS --fail --max-time 10 "http://echo.$MESH_NS.svc.cluster.local:8080/hostname")"
  [ "$answer" = echo ] || fail "the echo server answered '$answer', expected its hostname 'echo'"
done
out_after="$(envoy_counter client envoy_listener_downstream_cx_total "envoy_listener_address=\"$OUTBOUND_LISTENER\"")"
in_after="$(envoy_counter echo envoy_listener_downstream_cx_total "envoy_listener_address=\"$INBOUND_LISTENER\"")"
printf '  client outbound listener (%s): %s -> %s connections\n' "$OUTBOUND_LISTENER" "$out_before" "$out_after"
printf '  echo inbound listener (%s): %s -> %s connections\n' "$INBOUND_LISTENER" "$in_before" "$in_after"
[ $((out_after - out_before)) -ge "$REQUESTS" ] ||
  fail "the client's outbound listener did not see the $REQUESTS requests: iptables capture or Envoy is not in the path"
[ $((in_after - in_before)) -ge "$REQUESTS" ] ||
  fail "the server's inbound listener did not see the $REQUESTS requests: iptables capture or Envoy is not in the path"

say "a pod in an unlabelled namespace is untouched"
plain="$(kubectl -n "$PLAIN_NS" get pod plain \
  -o jsonpath='{range .spec.initContainers[*]}{.name}{" "}{end}{range .spec.containers[*]}{.name}{" "}{end}|{.metadata.annotations.sidecar\.istio\.io/status}')"
[ "$plain" = "plain |" ] || fail "pod $PLAIN_NS/plain was changed: containers and status annotation are '$plain'"

printf '\nPASS: kind e2e (cluster %s)\n' "$cluster"
