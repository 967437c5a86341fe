#!/usr/bin/env bash
# The main job end to end on a fresh Debian machine: install lockresolve (into a virtual
# environment of its own) and Debian's docker-registry, start a registry on a free loopback
# port, put a few images and a small Carvel package repository into it, resolve the
# repository's references to digests and show the ImagesLock that was written. Everything
# lives in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${need[@]}"
fi
work=$(mktemp -d)
# lockresolve goes into a virtual environment of the demo's own (removed at the end).
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check .
PATH="$work/venv/bin:$PATH"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
registry="127.0.0.1:$port"
cat > "$work/registry.yml" <<YAML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $work/storage}
  delete: {enabled: true}
http: {addr: "$registry"}
YAML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://$registry/v2/')" 2>/dev/null && break
  sleep 0.1
done
echo "== registry running at $registry"

# A few images (plain imgpkg images of small folders), pushed with lockresolve itself.
for image in web:1.0 web:1.1 worker:2.3.0 migrations:0.4; do
  name=${image%%:*}
  mkdir -p "$work/images/$image"
  echo "content of $image" > "$work/images/$image/README"
  lockresolve push -i "$registry/demo/$image" -f "$work/images/$image" > /dev/null
  echo "pushed $registry/demo/$image"
done

# A small package repository: Package CRs whose bundle and images are tags.
mkdir -p "$work/repo/packages/web.demo.dev" "$work/repo/packages/worker.demo.dev"
cat > "$work/repo/packages/web.demo.dev/1.1.0.yml" <<YAML
# The web front end.
apiVersion: data.packaging.carvel.dev/v1alpha1
kind: Package
metadata:
  name: web.demo.dev.1.1.0
spec:
  refName: web.demo.dev
  version: 1.1.0
  template:
    spec:
      fetch:
      - imgpkgBundle:
          image: $registry/demo/web:1.1   # the bundle to deploy
      template:
      - ytt: {}
      deploy:
      - kapp: {}
YAML
cat > "$work/repo/packages/worker.demo.dev/2.3.0.yml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  template:
    spec:
      initContainers:
      - name: migrate
        image: "$registry/demo/migrations:0.4"
      containers:
      - name: worker
        image: $registry/demo/worker:2.3.0
YAML

echo "== lockresolve -f packages/ --imgpkg-lock-output .imgpkg/images.yml"
cd "$work/repo"
lockresolve -f packages/ --imgpkg-lock-output .imgpkg/images.yml
echo "== .imgpkg/images.yml"
cat .imgpkg/images.yml
echo "== lockresolve -f packages/ --imgpkg-lock-output .imgpkg/images.yml --check"
lockresolve -f packages/ --imgpkg-lock-output .imgpkg/images.yml --check
