#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the libFuzzer harnesses in tests/fuzz/ with clang (ASan and UBSan)
# and run each for a bounded time from its seed corpus.
#
# Usage: contrib/fuzz.sh [SECONDS-PER-HARNESS] [HARNESS...]
#   default 60 seconds each, every harness (params, markers).  CI runs a
#   shortened form (tests/120-fuzz.bats); a long run is e.g.
#   contrib/fuzz.sh 3600.
# Environment: OVERPASS_FUZZ_DIR  build and working directory
#   (default _build-fuzz); crashes are left there as crash-* files.
# Exit status: 0 when no harness found a crash, 1 when one did, 77 when
# clang with libFuzzer is not available.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(params markers)
dir=${OVERPASS_FUZZ_DIR:-$top/_build-fuzz}

log() { printf 'fuzz.sh: %s\n' "$*" >&2; }

command -v clang >/dev/null || { log "clang not found"; exit 77; }
mkdir -p "$dir"
probe=$dir/probe.c
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }' >"$probe"
if ! clang -fsanitize=fuzzer "$probe" -o "$dir/probe" 2>/dev/null; then
	log "clang cannot link libFuzzer (-fsanitize=fuzzer)"
	exit 77
fi

# config.h and the libfuse flags, from a configured build directory
OVERPASS_BUILDDIR=$dir/cfg "$top/contrib/build.sh" >/dev/null
pc=$(grep -o 'PKG_CONFIG_PATH=[^ ]*' "$dir/cfg/.overpass-configure-args" | head -n 1)
export "${pc:-PKG_CONFIG_PATH=}"
cflags="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
cflags+=" -DFUSE_USE_VERSION=317 -I$dir/cfg -I$top/src $(pkg-config --cflags fuse3)"
libs="$(pkg-config --libs fuse3) -lattr -lacl -lpthread"
if grep -q '^#define HAVE_LIBURING 1' "$dir/cfg/config.h"; then
	libs+=" -luring"	# src/uring.c
fi
srcs=()
for f in "$top"/src/*.c; do
	[ "$(basename "$f")" = main.c ] || srcs+=("$f")
done

rc=0
for h in "${harnesses[@]}"; do
	bin=$dir/fuzz_$h
	log "building $h"
	# shellcheck disable=SC2086
	clang $cflags -Wl,-rpath,"$(pkg-config --variable=libdir fuse3)" \
		"$top/tests/fuzz/fuzz_$h.c" "${srcs[@]}" -o "$bin" $libs
	mkdir -p "$dir/corpus-$h"
	cp -n "$top/tests/fuzz/corpus/$h/"* "$dir/corpus-$h/" 2>/dev/null || true
	log "running $h for ${secs}s"
	if ! (cd "$dir" && ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$secs" \
		-close_fd_mask=2 -print_final_stats=1 "$dir/corpus-$h" 2>&1 | tail -n 15); then
		log "$h: crash (see $dir/crash-*)"
		rc=1
	fi
done
exit $rc
