#!/usr/bin/env bash
# `npm run bundle:gpu [-- OUT]`: a self-contained PeerTrain for a Linux x86-64 GPU server that has no
# Node, no Chromium and no network (README, "Train on a GPU server"; PLATFORM.md, "On a real GPU").
# Makes OUT/peertrain-gpu-browser.tar.xz and OUT/peertrain-gpu-app.tar.xz (each under 58 MiB, else split
# into .part-* files; PEERTRAIN_SKIP_BROWSER=1 rebuilds only the app part) holding, under peertrain/:
#   bin/node                      this machine's node, stripped
#   packages/harness/src/*.mjs    the CLI, the bench and the signaling worker bundled with esbuild, where
#                                 the harness looks for its repository root (three levels up) and workers
#   node_modules/playwright-core  kept whole: bundling it breaks its own path lookups
#   dist/                         the built web app, stamped so the runtime does not try to rebuild it
#   chromium/                     Debian's chromium-headless-shell, chromium-common's data and GL/Vulkan
#                                 loaders, and the non-glibc libraries of its ldd closure (optional)
#   bin/ip, bin/unshare           for the private network namespace WebRTC between tabs needs
#   run.sh                        `run.sh train [options]`, `run.sh bench [options]`, both with --gpu
#   gpu-figures.sh                scripts/device/gpu-figures.sh: every GPU and many-core figure
# Chromium: $PEERTRAIN_HEADLESS_SHELL_DEB (a chromium-headless-shell .deb; `apt-get download
# chromium-headless-shell` fetches one), else an installed /usr/lib/chromium/chromium-headless-shell;
# with neither the bundle has no browser and run.sh expects --chromium PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/.artifacts/gpu-bundle}" && cd "${1:-$ROOT/.artifacts/gpu-bundle}" && pwd)"
STAGE="$OUT/peertrain"
PART_SIZE=58m
log() { printf 'bundle:gpu: %s\n' "$*" >&2; }

rm -rf "$STAGE" && mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/packages/harness/src" "$STAGE/node_modules"
cd "$ROOT"

log "building the web app (dist/)"
node --import tsx --input-type=module -e "
  const { ensureBuilt } = await import('./packages/harness/src/build.ts');
  await ensureBuilt();"
cp -r dist "$STAGE/dist"

log "bundling the CLI, the bench and the signaling worker (esbuild)"
# Bundled CommonJS dependencies call require and read __dirname: give the ESM bundle both.
BANNER="import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fu } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);"
bundle() {
  npx esbuild "$1" --bundle --platform=node --format=esm --target=node20 --external:playwright-core \
    --banner:js="$BANNER" --log-level=error --outfile="$STAGE/packages/harness/src/$2"
}
bundle apps/cli/src/main.ts peertrain.mjs
bundle apps/bench/src/main.ts bench.mjs
bundle packages/harness/src/signal-server.worker.mjs signal-server.worker.mjs
cp -r node_modules/playwright-core "$STAGE/node_modules/playwright-core"

log "node $(node -v)"
cp "$(command -v node)" "$STAGE/bin/node"
strip "$STAGE/bin/node" 2>/dev/null || log "strip not found: node stays unstripped"

# Copies each shared library `ldd` lists for the given binaries into DIR, except glibc's own (the
# server's glibc must be used with its own loader).
copy_libs() {
  local dir="$1"
  shift
  ldd "$@" 2>/dev/null | awk '/=> \// { print $3 }' | sort -u | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | ld-linux* | libresolv.so*) ;;
      *) [ -e "$dir/$(basename "$lib")" ] || cp -L "$lib" "$dir/" ;;
    esac
  done
}

for tool in ip unshare; do
  if path="$(command -v "$tool")"; then
    cp -L "$path" "$STAGE/bin/" && copy_libs "$STAGE/lib" "$path"
  else
    log "$tool not found: the server needs its own for the network namespace"
  fi
done

SHELL_DIR=""
if [ -n "${PEERTRAIN_HEADLESS_SHELL_DEB:-}" ]; then
  TMP="$(mktemp -d)" && trap 'rm -rf "$TMP"' EXIT
  dpkg-deb -x "$PEERTRAIN_HEADLESS_SHELL_DEB" "$TMP"
  SHELL_DIR="$TMP/usr/lib/chromium"
elif [ -x /usr/lib/chromium/chromium-headless-shell ]; then
  SHELL_DIR=/usr/lib/chromium
fi
if [ -n "$SHELL_DIR" ]; then
  log "chromium-headless-shell from $SHELL_DIR"
  C="$STAGE/chromium"
  mkdir -p "$C/locales"
  cp "$SHELL_DIR/chromium-headless-shell" "$SHELL_DIR"/headless_*.pak "$C/"
  # chromium-common's data and the ANGLE/Vulkan loaders Chromium dlopens (ldd does not list them).
  for f in icudtl.dat v8_context_snapshot.bin snapshot_blob.bin libEGL.so libGLESv2.so libvulkan.so.1 \
    libvk_swiftshader.so vk_swiftshader_icd.json; do
    [ -e "/usr/lib/chromium/$f" ] && cp -L "/usr/lib/chromium/$f" "$C/"
  done
  [ -e /usr/lib/chromium/locales/en-US.pak ] && cp /usr/lib/chromium/locales/en-US.pak "$C/locales/"
  copy_libs "$C" "$C/chromium-headless-shell" "$C/libEGL.so" "$C/libGLESv2.so"
  # glvnd: the NVIDIA EGL vendor library is found through libEGL/libGLdispatch of the system.
  for f in libEGL.so.1 libGLdispatch.so.0 libvulkan.so.1; do
    [ -e "/usr/lib/x86_64-linux-gnu/$f" ] && [ ! -e "$C/$f" ] && cp -L "/usr/lib/x86_64-linux-gnu/$f" "$C/"
  done
else
  log "no chromium-headless-shell (set PEERTRAIN_HEADLESS_SHELL_DEB): the bundle has no browser"
fi

cat >"$STAGE/run.sh" <<'RUN'
#!/usr/bin/env bash
# run.sh train [peertrain train options] | run.sh bench [bench options]: PeerTrain on this machine's
# GPU (--gpu; the headless shell of the bundle unless --chromium is given). The NVIDIA driver is
# looked for under /usr/local/nvidia (PEERTRAIN_NVIDIA_ROOT moves it; VK_DRIVER_FILES,
# __EGL_VENDOR_LIBRARY_FILENAMES and LD_LIBRARY_PATH, when set, win).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
export PATH="$HERE/bin:$PATH"
export LD_LIBRARY_PATH="$HERE/lib:$HERE/chromium${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The headless shell takes navigator.language from LANG; C.UTF-8 gives "en-US@posix", which Intl rejects.
export LANG=en_US.UTF-8
BROWSER=()
[ -x "$HERE/chromium/chromium-headless-shell" ] && BROWSER=(--chromium "$HERE/chromium/chromium-headless-shell")
cmd="${1:-}"
shift || true
case "$cmd" in
  train) exec "$HERE/bin/node" "$HERE/packages/harness/src/peertrain.mjs" train "${BROWSER[@]}" --gpu "$@" ;;
  bench) exec "$HERE/bin/node" "$HERE/packages/harness/src/bench.mjs" "${BROWSER[@]}" --gpu "$@" ;;
  *) echo "usage: $0 train [peertrain train options] | bench [bench options]" >&2 && exit 2 ;;
esac
RUN
chmod +x "$STAGE/run.sh"
cp scripts/device/gpu-figures.sh "$STAGE/gpu-figures.sh"

# The runtime rebuilds dist/ when its stamp differs from the hash of the sources it sees; the bundle
# holds no sources, so stamp the hash of the bundle itself.
node --import tsx --input-type=module -e "
  const { computeBuildHash, BUILD_HASH_FILE } = await import('$ROOT/packages/harness/src/build.ts');
  const { writeFile } = await import('node:fs/promises');
  await writeFile('$STAGE/dist/' + BUILD_HASH_FILE, await computeBuildHash('$STAGE') + '\n');"

# Two archives, so a transfer that takes under 64 MiB at a time can carry each alone: the browser part
# (the headless shell, its libraries, ip/unshare) changes only with Chromium; the app part (node, the
# bundles, dist/) with every commit. Each is split into parts of PART_SIZE should it grow past it.
pack() {
  local name="$1"
  shift
  rm -f "$OUT/peertrain-gpu-$name.tar.xz"*
  log "packing $name (xz -${PEERTRAIN_XZ_LEVEL:-6})"
  tar -C "$OUT" -cf - "$@" | xz -T0 "-${PEERTRAIN_XZ_LEVEL:-6}" >"$OUT/peertrain-gpu-$name.tar.xz"
  if [ "$(stat -c %s "$OUT/peertrain-gpu-$name.tar.xz")" -gt $((58 * 1024 * 1024)) ]; then
    split -b "$PART_SIZE" "$OUT/peertrain-gpu-$name.tar.xz" "$OUT/peertrain-gpu-$name.tar.xz.part-"
    rm "$OUT/peertrain-gpu-$name.tar.xz"
  fi
}
BROWSER_PATHS=()
for p in peertrain/lib peertrain/bin/ip peertrain/bin/unshare peertrain/chromium; do
  [ -e "$OUT/$p" ] && BROWSER_PATHS+=("$p")
done
[ -z "${PEERTRAIN_SKIP_BROWSER:-}" ] && pack browser "${BROWSER_PATHS[@]}"
pack app peertrain/bin/node peertrain/packages peertrain/node_modules peertrain/dist peertrain/run.sh \
  peertrain/gpu-figures.sh
ls -l "$OUT"/peertrain-gpu-*.tar.xz* >&2
log "on the server, each archive: cat peertrain-gpu-NAME.tar.xz* | xz -d | tar -x -C /opt"
log "then: /opt/peertrain/run.sh train --model cnn"
