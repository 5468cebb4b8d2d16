#!/usr/bin/env bash
# Build the single-file plugin (`make plugin`): build/plugin/kubectl-gitops, a shiv zipapp holding the
# project and all its dependencies, that needs only Python 3.11+ on PATH (Linux x86_64: the native
# dependencies, e.g. pydantic-core and cryptography, are included for CPython 3.11 to 3.14 side by
# side; shiv unpacks the zip into ~/.shiv on first run because native modules cannot load from a zip).
#
# Also the krew archive build/plugin/kubectl-gitops-<version>-linux-amd64.tar.gz (krew installs from
# .tar.gz/.zip archives only; the zipapp is itself a zip, so it travels inside a tar.gz) and the
# sha256 files of both; plugins/gitops.yaml gets the archive's sha256 written in (see docs/install.md).
# Built in a temporary directory and moved into build/plugin at the end; reproducible with
# SOURCE_DATE_EPOCH (the commit's time).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
OUT="${KUBECTL_GITOPS_PLUGIN_OUT:-$ROOT/build/plugin}"
CACHE="${KUBECTL_GITOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-gitops}/plugin"
MANIFEST="${KUBECTL_GITOPS_KREW_MANIFEST:-$ROOT/plugins/gitops.yaml}"
SHIV_VERSION=1.0.8
PY_VERSIONS="3.11 3.12 3.13 3.14"
# As in the image: kubernetes>=37 requires aiohttp for its asyncio client, which kubectl-gitops never uses.
UNUSED_WHEELS='^(aiohttp|aiohttp_retry|aiosignal|aiohappyeyeballs|frozenlist|multidict|yarl|propcache|attrs)-'
STEP="starting"

die() { echo "make plugin: $*" >&2; exit 1; }
step() { STEP="$1"; echo "==> [$((SECONDS))s] $1" >&2; }
into_cache() { # into_cache DIR DEST: whole or not at all; a build that got there first wins
  mv -T "$1" "$2" 2>/dev/null || rm -rf "$1"
}

tool_env() { # a cached venv with shiv and the build backend
  TOOLS="$CACHE/tools-shiv-$SHIV_VERSION"
  [ -x "$TOOLS/bin/python" ] && return
  step "tools: shiv $SHIV_VERSION and setuptools from PyPI (cached)"
  rm -rf "$TOOLS.tmp.$$"
  { "$PYTHON" -m venv "$TOOLS.tmp.$$" \
      && "$TOOLS.tmp.$$/bin/python" -m pip install -q "shiv==$SHIV_VERSION" "setuptools>=68" wheel; } \
    >"$WORK/pip.log" 2>&1 || { tail -20 "$WORK/pip.log" >&2; rm -rf "$TOOLS.tmp.$$"; die "installing shiv failed (is PyPI reachable?)"; }
  into_cache "$TOOLS.tmp.$$" "$TOOLS"
}

project_wheel() {
  step "wheel: the project"
  mkdir -p "$WORK/src" "$WORK/wheels"
  tar -C "$ROOT" --exclude=__pycache__ -cf - pyproject.toml setup.cfg README.md kubectl_gitops webhook manifests \
    | tar -C "$WORK/src" -xf -
  "$TOOLS/bin/python" -m pip wheel -q --no-deps --no-build-isolation --wheel-dir "$WORK/project" "$WORK/src" \
    >"$WORK/pip.log" 2>&1 || { tail -20 "$WORK/pip.log" >&2; die "building the project's wheel failed"; }
  PROJECT_WHEEL="$(ls "$WORK"/project/kubectl_gitops-*.whl)"
}

dependency_wheels() {
  local key
  key="$( { sed -n '/^install_requires/,/^$/p' "$ROOT/setup.cfg"; echo "$PY_VERSIONS"; } | sha256sum | cut -c1-16)"
  WHEELS="$CACHE/wheels-$key"
  [ -d "$WHEELS" ] && return
  step "wheels: the dependencies for CPython $PY_VERSIONS (manylinux x86_64) from PyPI"
  local -a platforms=()
  for tag in manylinux_2_28 manylinux_2_17 manylinux2014 manylinux_2_5 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
  done
  for version in $PY_VERSIONS; do
    "$PYTHON" -m pip download -q --only-binary=:all: "${platforms[@]}" --python-version "$version" \
      --implementation cp --dest "$WORK/deps" "$PROJECT_WHEEL" >"$WORK/pip.log" 2>&1 \
      || { tail -20 "$WORK/pip.log" >&2; die "downloading the dependencies' wheels for Python $version failed"; }
  done
  rm -f "$WORK"/deps/kubectl_gitops-*.whl
  into_cache "$WORK/deps" "$WHEELS"
}

site_packages() {
  # Each wheel unpacked into one directory: the pure parts are the same for every Python, the native
  # modules differ by name (…cpython-311-x86_64-linux-gnu.so, …-312-…), so they sit side by side.
  step "site-packages: unpacking the wheels"
  local -a wheels
  # shellcheck disable=SC2010 # wheel file names
  mapfile -t wheels < <(cd "$WHEELS" && ls -- *.whl | grep -Ev "$UNUSED_WHEELS" | sed "s|^|$WHEELS/|")
  "$TOOLS/bin/python" - "$WORK/site" "$PROJECT_WHEEL" "${wheels[@]}" <<'PY'
import shutil, sys, zipfile
from pathlib import Path

site = Path(sys.argv[1])
for wheel in sys.argv[2:]:
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
# The project's data files (manifests) go where engine/install.py finds them beside the package.
for data in site.glob("kubectl_gitops-*.data"):
    shutil.move(str(data / "data" / "share" / "kubectl-gitops" / "manifests"), str(site / "manifests"))
    shutil.rmtree(data)
for scripts in site.glob("*.data"):
    shutil.rmtree(scripts)  # console scripts and headers: shiv's entry point replaces them
shutil.rmtree(site / "kubernetes" / "aio", ignore_errors=True)
PY
}

zipapp() {
  step "zipapp: shiv (entry point kubectl_gitops.cli.main:main, interpreter: python3 on PATH)"
  mkdir -p "$WORK/out"
  SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" "$TOOLS/bin/python" -m shiv --site-packages "$WORK/site" --reproducible --compressed \
    --python "/usr/bin/env python3" --entry-point kubectl_gitops.cli.main:main --no-modify \
    --output-file "$WORK/out/kubectl-gitops" >"$WORK/shiv.log" 2>&1 \
    || { tail -20 "$WORK/shiv.log" >&2; die "shiv failed"; }
  chmod 0755 "$WORK/out/kubectl-gitops"
  SHIV_ROOT="$WORK/shiv-root" "$PYTHON" "$WORK/out/kubectl-gitops" --help >/dev/null \
    || die "the zipapp does not run (kubectl-gitops --help)"
}

krew_archive() {
  step "krew archive and sha256"
  ARCHIVE="kubectl-gitops-$VERSION-linux-amd64.tar.gz"
  # krew (and its index) want the license beside the binary.
  local license="$ROOT/LICENSE"
  [ -f "$license" ] || license=/usr/share/common-licenses/Apache-2.0
  [ -f "$license" ] || die "no LICENSE in the repository and no /usr/share/common-licenses/Apache-2.0 (apt-get install base-files)"
  mkdir -p "$WORK/archive"
  cp "$license" "$WORK/archive/LICENSE"
  cp "$WORK/out/kubectl-gitops" "$WORK/archive/kubectl-gitops"
  tar -C "$WORK/archive" --sort=name --format=posix --numeric-owner --owner=0 --group=0 --mtime="@$SOURCE_DATE_EPOCH" \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -cf - LICENSE kubectl-gitops \
    | gzip -9 -n >"$WORK/out/$ARCHIVE"
  (cd "$WORK/out" && sha256sum kubectl-gitops >kubectl-gitops.sha256 && sha256sum "$ARCHIVE" >"$ARCHIVE.sha256")
}

publish() {
  step "publish: $OUT"
  mkdir -p "$OUT"
  for file in kubectl-gitops kubectl-gitops.sha256 "$ARCHIVE" "$ARCHIVE.sha256"; do
    mv -f "$WORK/out/$file" "$OUT/$file"
  done
  local sha
  sha="$(cut -d' ' -f1 "$OUT/$ARCHIVE.sha256")"
  if [ -f "$MANIFEST" ]; then
    "$PYTHON" - "$MANIFEST" "$VERSION" "$sha" <<'PY'
import re, sys
path, version, sha = sys.argv[1:]
text = open(path).read()
text = re.sub(r"(?m)^(\s+sha256: )\S+$", rf"\g<1>{sha}", text)
text = re.sub(r"(?m)^(  version: )\S+$", rf"\g<1>v{version}", text)
text = re.sub(r"/v[0-9][^/]*/kubectl-gitops-[^/\s]+-linux-amd64\.tar\.gz",
              f"/v{version}/kubectl-gitops-{version}-linux-amd64.tar.gz", text)
open(path, "w").write(text)
PY
  fi
  echo "plugin: $OUT/kubectl-gitops ($(($(stat -c %s "$OUT/kubectl-gitops") / 1024 / 1024)) MiB)" >&2
  echo "  sha256: $(cut -d' ' -f1 "$OUT/kubectl-gitops.sha256")" >&2
  echo "  krew archive: $OUT/$ARCHIVE  sha256: $sha (written into ${MANIFEST#"$ROOT"/})" >&2
}

main() {
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null || die "$PYTHON is not Python 3.11+"
  VERSION="$("$PYTHON" -c 'import re,sys; print(re.search(r"__version__ = \"([^\"]+)\"", open(sys.argv[1]).read())[1])' \
    "$ROOT/kubectl_gitops/__init__.py")"
  SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 1767225600)}"
  export SOURCE_DATE_EPOCH
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/kubectl-gitops-plugin.XXXXXX")"
  # shellcheck disable=SC2154 # rc is assigned inside the trap
  trap 'rc=$?; rm -rf "$WORK"; [ $rc -eq 0 ] || echo "make plugin: failed at step: $STEP (exit $rc)" >&2' EXIT
  mkdir -p "$CACHE"
  tool_env
  project_wheel
  dependency_wheels
  site_packages
  zipapp
  krew_archive
  publish
}

main "$@"
