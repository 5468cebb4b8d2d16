#!/usr/bin/env bash
# Build the kubectl-gitops OCI image without a Docker engine (`make image`).
#
# Two layers, assembled with umoci into an OCI layout and written as an OCI archive:
#   1. base: a minimal Debian root filesystem made by mmdebstrap (variant essential + python3, git,
#      ca-certificates, openssh-client; no docs, man pages, locales, apt or perl), plus the non-root user
#      65532. Cached under ~/.cache/kubectl-gitops/image/ keyed by everything it is made from.
#   2. app: a venv at /opt/kubectl-gitops holding the project's wheel and its dependencies' wheels
#      (built and downloaded here, installed inside the root filesystem with --no-index: no network in
#      there), and a standalone kustomize built from pinned Go modules (adapters/render.py uses it when
#      there is no kubectl).
# Reproducible for the same inputs: SOURCE_DATE_EPOCH (the commit's time) fixes every timestamp and
# switches Python to hash-checked bytecode; tar members are sorted with fixed mtimes and owners.
#
# Output: build/image/kubectl-gitops-<version>.oci.tar, .digest (the manifest digest) and .sha256.
# Everything is built in a temporary directory and moved into build/ at the end: a failed build
# leaves nothing half-made there.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
SUITE="${KUBECTL_GITOPS_IMAGE_SUITE:-bookworm}"
MIRROR="${KUBECTL_GITOPS_IMAGE_MIRROR:-}"
OUT="${KUBECTL_GITOPS_IMAGE_OUT:-$ROOT/build/image}"
CACHE="${KUBECTL_GITOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-gitops}/image"
PACKAGES="python3,git,ca-certificates,openssh-client"
# The base layer's clock: fixed, so that the cached base does not change with every commit.
BASE_EPOCH=1767225600 # 2026-01-01T00:00:00Z
USER_ID=65532
# Wheels kubectl-gitops never imports: kubernetes>=37 requires aiohttp for its asyncio client
# (kubernetes.aio, 68 MB installed), which the project does not use; they are left out with it.
UNUSED_WHEELS='^(aiohttp|aiohttp_retry|aiosignal|aiohappyeyeballs|frozenlist|multidict|yarl|propcache|attrs)-'
UNUSED_DIRS="kubernetes/aio"
VENV=/opt/kubectl-gitops
STEP="starting"

die() { echo "make image: $*" >&2; exit 1; }
step() { STEP="$1"; echo "==> [$((SECONDS))s] $1" >&2; }
into_cache() { # into_cache DIR DEST: whole or not at all; a build that got there first wins
  mv -T "$1" "$2" 2>/dev/null || rm -rf "$1"
}
# shellcheck disable=SC2154 # rc is assigned inside the trap
trap 'rc=$?; [ $rc -eq 0 ] || echo "make image: failed at step: $STEP (exit $rc)" >&2' EXIT

need() { # need COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: apt-get install $2 (Debian/Ubuntu package '$2')"
}

check_tools() {
  need mmdebstrap mmdebstrap
  need umoci umoci
  need tar tar
  need sha256sum coreutils
  need chroot coreutils
  [ "$(id -u)" = 0 ] || die "run as root (mmdebstrap --mode=root and chroot install into the root filesystem)"
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null \
    || die "$PYTHON is not Python 3.11+ (set PYTHON=...)"
  "$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip: apt-get install python3-pip"
}

project_facts() {
  VERSION="$("$PYTHON" -c 'import re,sys; print(re.search(r"__version__ = \"([^\"]+)\"", open(sys.argv[1]).read())[1])' \
    "$ROOT/kubectl_gitops/__init__.py")"
  REVISION="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
  if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    REVISION="$REVISION-dirty"
  fi
  SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo "$BASE_EPOCH")}"
  export SOURCE_DATE_EPOCH
  CREATED="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
  SOURCE_URL="${KUBECTL_GITOPS_SOURCE_URL:-https://github.com/kubectl-gitops/kubectl-gitops}"
}

# --- layer 1: the Debian base ----------------------------------------------------------------

base_hook() { # the customize hook, run by mmdebstrap with the root filesystem as $1
  cat <<'HOOK'
set -eu
root="$1"
# Nothing runs a maintainer script after this: what only installing needs goes. perl (perl-base is
# Essential for dpkg's scripts) serves git's perl commands (send-email, svn) that GitPython never runs.
perl="$(chroot "$root" dpkg-query -W -f='${db:Status-Status} ${Package}\n' \
  | awk '$1 == "installed" && $2 ~ /^(perl|perl-base|perl-modules-.*|libperl5.*|liberror-perl|git-man)$/ {print $2}')"
# shellcheck disable=SC2086 # one package name per word
chroot "$root" dpkg --purge --force-depends --force-remove-essential $perl >/dev/null 2>&1
# git's server side and mail/interactive helpers: a client that fetches needs none of them.
for tool in git-daemon git-http-backend git-imap-send git-http-push git-shell scalar git-sh-i18n--envsubst \
    git-instaweb git-web--browse; do
  rm -f "$root/usr/lib/git-core/$tool" "$root/usr/bin/$tool"
done
rm -rf "$root"/usr/share/gitweb "$root"/usr/share/bash-completion "$root"/usr/bin/scalar \
  "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/var/log/* "$root"/var/cache/ldconfig/aux-cache
echo 'nonroot:x:65532:65532:kubectl-gitops:/home/nonroot:/usr/sbin/nologin' >>"$root/etc/passwd"
echo 'nonroot:x:65532:' >>"$root/etc/group"
echo 'nonroot:!:0::::::' >>"$root/etc/shadow"
install -d -m 0750 -o 65532 -g 65532 "$root/home/nonroot"
HOOK
}

base_args() {
  printf '%s\n' --mode=root --variant=essential --include="$PACKAGES" --format=tar \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --dpkgopt='path-exclude=/usr/share/common-licenses/*'
}

build_base() {
  local key args
  args="$(base_args)"
  key="$(printf '%s\n%s\n%s\n%s\n%s\n' "$SUITE" "$MIRROR" "$args" "$(base_hook)" "$(mmdebstrap --version)" \
    | sha256sum | cut -c1-16)"
  BASE_TAR="$CACHE/base-$SUITE-$key.tar"
  if [ -f "$BASE_TAR" ]; then
    echo "    cached: $BASE_TAR" >&2
    return
  fi
  step "debian base: mmdebstrap $SUITE ($PACKAGES) from the Debian package sources"
  mkdir -p "$CACHE"
  base_hook >"$WORK/base-hook.sh"
  local -a argv
  mapfile -t argv <<<"$args"
  # Downloaded .deb files are kept in the cache (they don't change what is built, only how fast).
  mkdir -p "$CACHE/debs"
  if ! SOURCE_DATE_EPOCH="$BASE_EPOCH" mmdebstrap "${argv[@]}" --skip=download/empty --skip=essential/unlink \
      --setup-hook="mkdir -p \"\$1/var/cache/apt/archives\" && find '$CACHE/debs' -name '*.deb' -exec cp -t \"\$1/var/cache/apt/archives\" {} +" \
      --customize-hook="find \"\$1/var/cache/apt/archives\" -name '*.deb' -exec cp -t '$CACHE/debs' {} +" \
      --customize-hook="sh $WORK/base-hook.sh \"\$1\"" \
      "$SUITE" "$WORK/base.tar" ${MIRROR:+"$MIRROR"} >"$WORK/mmdebstrap.log" 2>&1; then
    tail -20 "$WORK/mmdebstrap.log" >&2
    die "mmdebstrap could not build the Debian base (is a Debian mirror reachable? apt sources: ${MIRROR:-the default deb.debian.org}); full log above"
  fi
  mv "$WORK/base.tar" "$BASE_TAR.tmp.$$" && mv "$BASE_TAR.tmp.$$" "$BASE_TAR"
}

# --- layer 2: the dependencies and kustomize; layer 3: the project --------------------------

platform_flags() {
  for tag in manylinux_2_36 manylinux_2_34 manylinux_2_28 manylinux_2_17 manylinux2014 manylinux_2_5 manylinux1; do
    printf '%s\n' --platform "${tag}_x86_64"
  done
  printf '%s\n' --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none
}

build_project_wheel() {
  step "wheel: the project (setuptools from a cached build environment, no network when warm)"
  local requires env
  requires="$("$PYTHON" -c 'import sys,tomllib; print(" ".join(tomllib.load(open(sys.argv[1],"rb"))["build-system"]["requires"]))' \
    "$ROOT/pyproject.toml")"
  env="$CACHE/buildenv-$(echo "$requires" | sha256sum | cut -c1-16)"
  if [ ! -x "$env/bin/python" ]; then
    rm -rf "$env.tmp.$$"
    # shellcheck disable=SC2086 # the requirements are words
    { "$PYTHON" -m venv "$env.tmp.$$" && "$env.tmp.$$/bin/python" -m pip install -q $requires; } >"$WORK/pip.log" 2>&1 \
      || { tail -20 "$WORK/pip.log" >&2; rm -rf "$env.tmp.$$"; die "installing the build requirements ($requires) failed (is PyPI reachable?)"; }
    into_cache "$env.tmp.$$" "$env"
  fi
  # A copy of the sources: setuptools writes build/ and *.egg-info where it builds.
  mkdir -p "$WORK/src" "$WORK/project"
  tar -C "$ROOT" --exclude=__pycache__ -cf - pyproject.toml setup.cfg README.md kubectl_gitops webhook manifests \
    | tar -C "$WORK/src" -xf -
  "$env/bin/python" -m pip wheel -q --no-deps --no-build-isolation --wheel-dir "$WORK/project" "$WORK/src" >"$WORK/pip.log" 2>&1 \
    || { tail -20 "$WORK/pip.log" >&2; die "building the project's wheel failed"; }
  PROJECT_WHEEL="$(ls "$WORK"/project/kubectl_gitops-*.whl)"
}

download_wheels() {
  local key
  key="$( { sed -n '/^install_requires/,/^$/p' "$ROOT/setup.cfg"; platform_flags; } | sha256sum | cut -c1-16)"
  WHEELS="$CACHE/wheels-$key"
  [ -d "$WHEELS" ] && return
  step "wheels: the dependencies' (cp311 manylinux) from PyPI"
  local -a flags
  mapfile -t flags < <(platform_flags)
  "$PYTHON" -m pip download -q --only-binary=:all: "${flags[@]}" --dest "$WORK/wheels" "$PROJECT_WHEEL" pip \
    >"$WORK/pip.log" 2>&1 \
    || { tail -20 "$WORK/pip.log" >&2; die "downloading the dependencies' wheels failed (is PyPI reachable?)"; }
  rm -f "$WORK"/wheels/kubectl_gitops-*.whl
  into_cache "$WORK/wheels" "$WHEELS"
}

build_kustomize() {
  KUSTOMIZE="$(cd "$ROOT" && "$PYTHON" -m kubectl_gitops.devcluster.gotools kustomize)" \
    || die "building kustomize from Go modules failed (see above)"
}

chroot_run() { # chroot_run ROOTFS EPOCH COMMAND...: as root, a clean environment, no network needed
  local rootfs="$1" epoch="$2"
  shift 2
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 SOURCE_DATE_EPOCH="$epoch" PYTHONHASHSEED=0 \
    "$(command -v chroot)" "$rootfs" "$@"
}

build_deps_layer() {
  # Commit-independent (the base layer's clock): cached as an extracted root filesystem (the lower
  # directory of the project layer's overlay) and as an OCI layout holding layers 1 and 2.
  local key
  key="$( { basename "$BASE_TAR"; (cd "$WHEELS" && sha256sum -- *.whl); sha256sum <"$KUSTOMIZE"; echo "$VENV"; } \
    | sha256sum | cut -c1-16)"
  LOWER="$CACHE/rootfs-$key"
  LAYERS="$CACHE/layers-$key"
  [ -d "$LOWER" ] && [ -d "$LAYERS" ] && return
  step "dependencies layer: venv $VENV with the wheels installed offline (--no-index), kustomize"
  local rootfs="$WORK/rootfs" pip_whl
  mkdir -p "$rootfs"
  tar -C "$rootfs" -xf "$BASE_TAR"
  mkdir "$rootfs/tmp/wheels"
  cp "$WHEELS"/*.whl "$rootfs/tmp/wheels/"
  pip_whl="$(basename "$(ls "$WHEELS"/pip-*.whl)")"
  chroot_run "$rootfs" "$BASE_EPOCH" /usr/bin/python3 -m venv --without-pip "$VENV" \
    || die "python3 -m venv in the root filesystem failed"
  local -a deps
  # shellcheck disable=SC2010 # wheel file names
  mapfile -t deps < <(cd "$rootfs/tmp/wheels" && ls -- *.whl | grep -v '^pip-' | grep -Ev "$UNUSED_WHEELS" \
    | sed 's|^|/tmp/wheels/|')
  chroot_run "$rootfs" "$BASE_EPOCH" "$VENV/bin/python" "/tmp/wheels/$pip_whl/pip" install -q --no-index --no-deps \
    --no-cache-dir --disable-pip-version-check --no-warn-script-location "${deps[@]}" \
    || die "installing the dependencies' wheels offline in the root filesystem failed"
  rm -rf "$rootfs/tmp/wheels"
  local site
  site="$(cd "$rootfs" && echo ."$VENV"/lib/python3*/site-packages)"
  for dir in $UNUSED_DIRS; do rm -rf "${rootfs:?}/$site/$dir"; done
  chroot_run "$rootfs" "$BASE_EPOCH" "$VENV/bin/python" -c \
    'import kubernetes.client, kubernetes.config, kubernetes.watch, kubernetes.dynamic, git, flask, gunicorn, yaml, cryptography, prometheus_client, click' \
    || die "the dependencies do not import in the root filesystem (after leaving out $UNUSED_DIRS)"
  install -m 0755 "$KUSTOMIZE" "$rootfs/usr/local/bin/kustomize"
  SOURCE_DATE_EPOCH="$BASE_EPOCH" reproducible_tar "$rootfs" "$WORK/deps.tar" ./opt/kubectl-gitops ./usr/local/bin/kustomize
  local oci="$WORK/layers" created
  created="$(date -u -d "@$BASE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
  umoci init --layout "$oci"
  umoci new --image "$oci:layers"
  umoci raw add-layer --image "$oci:layers" --history.created "$created" \
    --history.created_by "mmdebstrap --variant=essential --include=$PACKAGES $SUITE (packaging/image.sh)" "$BASE_TAR"
  umoci raw add-layer --image "$oci:layers" --history.created "$created" \
    --history.created_by "venv $VENV: dependencies from wheels (--no-index), kustomize (packaging/image.sh)" \
    "$WORK/deps.tar"
  rm -f "$WORK/deps.tar"
  into_cache "$oci" "$LAYERS"
  into_cache "$rootfs" "$LOWER"
}

build_project_layer() {
  # An overlay on the cached root filesystem: its upper directory is exactly what the install added.
  step "project layer: the project's wheel installed offline into $VENV (overlay on the dependencies)"
  local upper="$WORK/upper" merged="$WORK/merged"
  mkdir -p "$upper" "$WORK/ovl-work" "$merged" "$WORK/project-mnt"
  cp "$PROJECT_WHEEL" "$WORK/project-mnt/"
  local whl
  whl="/mnt/$(basename "$PROJECT_WHEEL")"
  local pip_whl
  pip_whl="/mnt/$(basename "$(ls "$WHEELS"/pip-*.whl)")"
  cp "$WHEELS"/pip-*.whl "$WORK/project-mnt/"
  local chroot_bin
  chroot_bin="$(command -v chroot)"
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare --mount --propagation private -- sh -euc '
    mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4"
    mount --bind "$5" "$4/mnt"
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 SOURCE_DATE_EPOCH="$6" PYTHONHASHSEED=0 \
      "$7" "$4" "$8/bin/python" "$9/pip" install -q --no-index --no-deps --no-cache-dir \
      --disable-pip-version-check --no-warn-script-location "${10}"
    # The smoke test: the entry point, as the image user, with the image environment, no network.
    env -i PATH="$8/bin:/usr/local/bin:/usr/bin:/bin" HOME=/home/nonroot LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
      "$7" --userspec=65532:65532 "$4" kubectl-gitops --help >/dev/null
  ' sh "$LOWER" "$upper" "$WORK/ovl-work" "$merged" "$WORK/project-mnt" "$SOURCE_DATE_EPOCH" "$chroot_bin" \
    "$VENV" "$pip_whl" "$whl" \
    || die "installing the project's wheel (or running kubectl-gitops --help) in the root filesystem failed"
  local extra
  rm -rf "$upper/tmp" # pip's unpacking directory, empty after the install
  extra="$(cd "$upper" && find . -mindepth 1 -maxdepth 1 ! -name opt)"
  [ -z "$extra" ] || die "the project's install wrote outside /opt: $extra"
  reproducible_tar "$upper" "$WORK/project.tar" ./opt
}

reproducible_tar() { # reproducible_tar DIR OUT PATH... : sorted, fixed mtimes and numeric owners, no atime/ctime
  local dir="$1" out="$2"
  shift 2
  tar -C "$dir" --sort=name --format=posix --numeric-owner --owner=0 --group=0 --mtime="@$SOURCE_DATE_EPOCH" \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -cf "$out" "$@"
}

# --- the image -------------------------------------------------------------------------------

assemble() {
  step "assemble: umoci (layers, config, annotations)"
  local oci="$WORK/oci" image="$WORK/oci:$VERSION"
  cp -r "$LAYERS" "$oci"
  umoci tag --image "$oci:layers" "$VERSION"
  umoci rm --image "$oci:layers"
  umoci raw add-layer --image "$image" --history.created "$CREATED" \
    --history.created_by "the kubectl-gitops $VERSION wheel installed offline into $VENV (packaging/image.sh)" \
    "$WORK/project.tar"
  local -a labels=(
    "org.opencontainers.image.title=kubectl-gitops"
    "org.opencontainers.image.description=GitOps for Kubernetes: the kubectl-gitops CLI, admission webhook and controller"
    "org.opencontainers.image.source=$SOURCE_URL"
    "org.opencontainers.image.version=$VERSION"
    "org.opencontainers.image.revision=$REVISION"
    "org.opencontainers.image.licenses=Apache-2.0"
    "org.opencontainers.image.created=$CREATED"
  )
  local -a flags=()
  for label in "${labels[@]}"; do flags+=(--config.label "$label" --manifest.annotation "$label"); done
  umoci config --image "$image" --no-history --created "$CREATED" --author "kubectl-gitops" \
    --architecture amd64 --os linux --config.user "$USER_ID:$USER_ID" --config.workingdir /home/nonroot \
    --config.env "PATH=$VENV/bin:/usr/local/bin:/usr/bin:/bin" --config.env HOME=/home/nonroot \
    --config.env LANG=C.UTF-8 --config.env PYTHONDONTWRITEBYTECODE=1 --config.env PYTHONUNBUFFERED=1 \
    --config.entrypoint kubectl-gitops --config.cmd --help --config.exposedports 8443/tcp "${flags[@]}"
  umoci gc --layout "$oci"
  ( cd "$oci" && reproducible_tar . "$WORK/image.tar" ./blobs ./index.json ./oci-layout )
  DIGEST="$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
    "$oci/index.json")"
}

publish() {
  step "publish: $OUT"
  local name="kubectl-gitops-$VERSION.oci.tar"
  mv "$WORK/image.tar" "$WORK/$name"
  echo "$DIGEST" >"$WORK/$name.digest"
  (cd "$WORK" && sha256sum "$name" >"$name.sha256")
  mkdir -p "$OUT"
  for file in "$name" "$name.digest" "$name.sha256"; do mv -f "$WORK/$file" "$OUT/$file"; done
  local size
  size="$(tar -xOf "$OUT/$name" --wildcards './blobs/sha256/*' 2>/dev/null | wc -c)"
  echo "image: $OUT/$name" >&2
  echo "  reference: oci-archive:$OUT/$name:$VERSION   digest: $DIGEST" >&2
  echo "  revision $REVISION, created $CREATED; blobs $((size / 1024 / 1024)) MiB compressed" >&2
  echo "$DIGEST"
}

main() {
  step "checking tools"
  check_tools
  project_facts
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/kubectl-gitops-image.XXXXXX")"
  # shellcheck disable=SC2154 # rc is assigned inside the trap
  trap 'rc=$?; rm -rf "$WORK"; [ $rc -eq 0 ] || echo "make image: failed at step: $STEP (exit $rc)" >&2' EXIT
  build_base
  build_project_wheel
  download_wheels
  build_kustomize
  build_deps_layer
  build_project_layer
  assemble
  publish
}

main "$@"
