#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Run bats files of the already-built tree on another kernel:
#
#   contrib/vm-test.sh KERNEL [BATS-FILES...]
#
# KERNEL is a Debian kernel by version: 6.1 (bookworm's
# linux-image-6.1.0-*-amd64-unsigned), 6.12 (trixie's
# linux-image-6.12.*-amd64-unsigned), or host / 6.18: run bats here, no VM.
# The kernel package is downloaded (never installed) from the Debian archive
# this machine already uses, with a private apt state; vmlinuz and the
# modules the VM needs are unpacked into $OVERPASS_VM_CACHE.  The VM boots
# under qemu-system-x86_64 (TCG, or KVM with OVERPASS_VM_ACCEL=kvm) from a tiny
# busybox initramfs, mounts this machine's root read-only over 9p, puts an
# ext4 scratch disk on /tmp, and runs bats there with the host-built
# src/overpass and /opt/overpass-deps: nothing is built inside.
#
# Without BATS-FILES a kernel-dependent subset runs (DEFAULT_FILES below).
#
# OVERPASS_VM_BINARY=FILE tests one binary, the self-contained one
# (contrib/build.sh --self-contained) on a machine without its build
# dependencies: /opt/overpass-deps and /opt/overpass-deps-static are
# hidden under empty tmpfs mounts, FILE is installed as
# /usr/local/bin/overpass (a tmpfs there, holding links to what the
# host's has) as a user would install it, and the tests use that copy
# ($OVERPASS, $OVERPASS_SELF_CONTAINED).  On host, the prefixes are hidden
# in a mount namespace of its own and FILE is used where it is.  Without
# BATS-FILES the basic files run then (BINARY_FILES below).
# The last line is "N passed, N failed, N skipped"; exit status 0 when
# nothing failed.  The whole VM run is bounded by OVERPASS_VM_TIMEOUT
# seconds, and the VM powers off when bats is done.
#
# Environment:
#   OVERPASS_VM_CACHE    kernels and initramfs (default /var/cache/overpass-vm)
#   OVERPASS_VM_TIMEOUT  seconds for the whole VM run (default 1800)
#   OVERPASS_VM_MEM      guest memory in MiB (default 2048)
#   OVERPASS_VM_ACCEL    kvm: boot with KVM where /dev/kvm works, again
#                        with TCG when the guest never starts (default tcg)
#   OVERPASS_VM_SMP      guest CPUs (default: this machine's, at most 4)
#   OVERPASS_VM_BINARY   the overpass binary to test (default: the tree's
#                        src/overpass, with /opt/overpass-deps visible)
#   OVERPASS_VM_BENCH    run contrib/bench.py in the VM instead of bats,
#                        with these arguments (e.g. "--reps 3 --only
#                        tar-tree"), its work directory on the scratch
#                        disk (8 GiB; give OVERPASS_VM_MEM=8192 for the
#                        1 GiB data file's rows); the table is printed
#   OVERPASS_NO_APT=1    do not run apt-get for qemu, busybox, kmod, cpio
#   OVERPASS_DIFF_OPS, OVERPASS_DIFF_SEED
#                        passed on to the guest's tests/040
#   OVERPASS             the binary the tests run (default the tree's
#                        src/overpass; contrib/test.sh gives _build's); the
#                        VM sees this machine's files but its own /tmp,
#                        /var/tmp, /run and /root: a tree there (a CI
#                        clone in /tmp) is copied onto the scratch disk,
#                        its files as git lists them and the binary, and
#                        mounted at the same path in the VM
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${OVERPASS_VM_CACHE:-/var/cache/overpass-vm}
vm_timeout=${OVERPASS_VM_TIMEOUT:-1800}
vm_mem=${OVERPASS_VM_MEM:-2048}
vm_smp=${OVERPASS_VM_SMP:-$(n=$(nproc); echo $((n > 4 ? 4 : n)))}
DEFAULT_FILES=(tests/035-file-ops.bats tests/080-passthrough.bats tests/130-restart.bats)
BINARY_FILES=(tests/003-self-contained.bats tests/001-mount.bats
	tests/010-merged-view.bats tests/030-write.bats tests/035-file-ops.bats)
binary=${OVERPASS_VM_BINARY:-}
# What OVERPASS_VM_BINARY hides: the prefixes of the build's libfuse.
HIDDEN=(/opt/overpass-deps /opt/overpass-deps-static)
# Modules the guest loads, with their dependencies, in this order.
MODULES=(virtio_pci virtio_blk 9pnet_virtio 9p ext4 fuse overlay loop)

log() { printf 'vm-test: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
	sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

install_tools() {
	local p missing=()
	[ "${OVERPASS_NO_APT:-0}" = 1 ] && return 0
	for p in qemu-system-x86 busybox-static kmod cpio xz-utils; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	[ "${#missing[@]}" = 0 ] && return 0
	[ "$(id -u)" = 0 ] || die "missing ${missing[*]}: run as root or install them"
	log "installing ${missing[*]} with apt-get"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >&2
}

# The archive URI the machine already uses for Debian (as setup-deps.sh).
debian_uri() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' "$f")
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
	uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
		/etc/apt/sources.list 2>/dev/null || true)
	[ -n "$uri" ] || die "cannot find the Debian archive URI in /etc/apt"
	echo "$uri"
}

# apt-get with a private sources list and state: it downloads packages of
# another suite into the current directory and never touches the system's
# package state (no install, no upgrade).
private_apt() {
	local d=$cache/apt-$suite tool=$1
	shift
	"$tool" -q -o Dir::Etc::SourceList="$d/sources.list" \
		-o Dir::Etc::SourceParts=/nonexistent \
		-o Dir::State="$d/state" -o Dir::State::status="$d/state/status" \
		-o Dir::Cache="$d/cache" -o APT::Get::List-Cleanup=0 \
		-o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}

fetch_kernel() {
	local d=$cache/apt-$suite pkg deb
	mkdir -p "$d/state/lists/partial" "$d/cache/archives/partial"
	: >>"$d/state/status"
	printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
		"$(debian_uri)" "$suite" >"$d/sources.list"
	if [ -z "$(find "$d/state/lists" -name '*Packages*' -mmin -1440 2>/dev/null)" ]; then
		log "updating the private package index for $suite"
		private_apt apt-get update -qq >&2
	fi
	pkg=$(private_apt apt-cache pkgnames linux-image-$kver_prefix |
		grep -E "^linux-image-$kver_re-amd64-unsigned\$" | sort -V | tail -n1)
	[ -n "$pkg" ] || die "no linux-image-$kver_prefix*-amd64-unsigned in $suite"
	kdir=$cache/$pkg
	[ -f "$kdir/.done" ] && return 0
	[ -d "$kdir/deb/lib/modules" ] || rm -rf "$kdir"
	log "downloading $pkg (not installing it)"
	rm -rf "$kdir" && mkdir -p "$kdir/deb"
	(cd "$kdir" && private_apt apt-get download "$pkg" >&2)
	deb=$(ls "$kdir"/*.deb)
	dpkg-deb -x "$deb" "$kdir/deb"
	rm -f "$deb"
	# Newer packages ship their modules in /usr/lib only; modprobe -d wants
	# lib/modules, and modules.dep, which depmod writes at install time.
	[ -d "$kdir/deb/lib/modules" ] || ln -s usr/lib "$kdir/deb/lib"
	depmod -b "$kdir/deb" "$(ls "$kdir/deb/lib/modules")"
	touch "$kdir/.done"
}

# The initramfs: static busybox, the modules (decompressed) and an init
# that mounts the host root, runs bats and powers off.
build_initramfs() {
	local root=$kdir/initramfs mods kver m
	kver=$(ls "$kdir/deb/lib/modules")
	vmlinuz=$kdir/deb/boot/vmlinuz-$kver
	initrd=$kdir/initrd-$(cat "$0" "$top/contrib/vm-init.sh" | sha1sum | cut -c1-12).cpio.gz
	[ -f "$initrd" ] && return 0
	rm -rf "$root" && mkdir -p "$root"/{bin,dev,proc,sys,host,mods}
	cp /bin/busybox "$root/bin/busybox"
	for m in sh mount umount insmod mkdir sleep poweroff cat echo chmod ln switch_root; do
		ln -s busybox "$root/bin/$m"
	done
	: >"$root/mods/order"
	mods=$(for m in "${MODULES[@]}"; do
		modprobe -d "$kdir/deb" -S "$kver" --show-depends "$m" 2>/dev/null |
			awk '$1 == "insmod" {print $2}'
	done | awk '!seen[$0]++')
	for m in $mods; do
		local base=${m##*/}
		case $base in
		*.xz) xz -dc "$m" >"$root/mods/${base%.xz}"; base=${base%.xz} ;;
		*.zst) zstd -qdc "$m" >"$root/mods/${base%.zst}"; base=${base%.zst} ;;
		*) cp "$m" "$root/mods/$base" ;;
		esac
		echo "$base" >>"$root/mods/order"
	done
	cp "$top/contrib/vm-init.sh" "$root/init"
	chmod 755 "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd"
}

# Whether the guest hides PATH under mounts of its own (vm-init.sh: the
# scratch disk on /tmp, tmpfs on the others).
guest_hidden() {
	local p
	for p in /tmp /var/tmp /run /root /var/lib/containers; do
		case $1/ in "$p"/*) return 0 ;; esac
	done
	return 1
}

# stage_tree DIR: the tree's files (git's list, else all but the build
# directories and .git) in DIR/.tree, with $OVERPASS where it is in the
# tree; the guest mounts it at the tree's path (a CI clone in /tmp).
# Prints the binary's path in the guest.
stage_tree() {
	local d=$1/.tree rel
	mkdir -p "$d"
	(cd "$top" && { git ls-files -z --cached --others --exclude-standard 2>/dev/null ||
		find . \( -name '_build*' -o -name .git \) -prune -o -print0; } |
		while IFS= read -r -d '' f; do
			if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
		done | cpio -0 -pdm --quiet "$d")
	rel=${OVERPASS#"$top"/}
	if [ "$rel" != "$OVERPASS" ]; then
		install -D -m 755 "$OVERPASS" "$d/$rel"
		echo "$OVERPASS"
	elif guest_hidden "$OVERPASS"; then
		install -D -m 755 "$OVERPASS" "$1/.bin/overpass"
		echo /tmp/.bin/overpass
	else
		echo "$OVERPASS"
	fi
}

# A fresh ext4 scratch disk for the guest's /tmp; the host writes the
# command to run as /vm-cmd in it.
make_scratch() {
	local files=() f dir guest_ovp=$OVERPASS q
	for f in "${bats_files[@]}"; do files+=("$(realpath "$f")"); done
	dir=$(mktemp -d)
	q=$(printf '%q' "$top")
	: >"$dir/vm-cmd"
	if guest_hidden "$top"; then
		guest_ovp=$(stage_tree "$dir")
		echo "mkdir -p $q && mount --bind /tmp/.tree $q ||
	{ echo 'not ok 0 cannot put the tree at '$q; exit 1; }" >>"$dir/vm-cmd"
	fi
	cat >>"$dir/vm-cmd" <<EOT
cd $q
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export TMPDIR=/tmp HOME=/tmp/home OVERPASS_VM_KERNEL=$kernel
export OVERPASS=$(printf '%q' "$guest_ovp")
$(for v in OVERPASS_DIFF_OPS OVERPASS_DIFF_SEED BATS_TEST_TIMEOUT; do [ -z "${!v:-}" ] || echo "export $v=$(printf '%q' "${!v}")"; done)
mkdir -p /tmp/home
EOT
	if [ -n "$binary" ]; then
		mkdir -m 755 "$dir/bin"
		install -m 755 "$binary" "$dir/bin/overpass"
		cat >>"$dir/vm-cmd" <<'EOT'
mkdir /tmp/host-local-bin && mount --bind /usr/local/bin /tmp/host-local-bin &&
	mount -t tmpfs -o mode=755 overpass-local-bin /usr/local/bin &&
	for f in /tmp/host-local-bin/*; do [ ! -e "$f" ] || ln -s "$f" /usr/local/bin/; done &&
	install -m 755 /tmp/bin/overpass /usr/local/bin/overpass ||
	{ echo 'not ok 0 cannot install /usr/local/bin/overpass'; exit 1; }
EOT
		hide_deps_cmd /usr/local/bin/overpass >>"$dir/vm-cmd"
	fi
	if [ -n "${OVERPASS_VM_BENCH:-}" ]; then
		# the benchmark on the scratch disk; its table to the console,
		# and one TAP line, so the run ends as a test run does
		cat >>"$dir/vm-cmd" <<EOT
python3 contrib/bench.py --overpass "\$OVERPASS" --workdir /tmp/bench $OVERPASS_VM_BENCH
b=\$?
cat /tmp/bench/bench.txt 2>/dev/null
[ \$b = 0 ] && echo "ok 1 contrib/bench.py" || echo "not ok 1 contrib/bench.py (exit \$b)"
EOT
	else
		echo "bats --tap $(printf '%q ' "${files[@]}")" >>"$dir/vm-cmd"
	fi
	scratch=$(mktemp /var/tmp/overpass-vm-XXXXXX.img)
	truncate -s 8G "$scratch"
	mkfs.ext4 -q -F -d "$dir" "$scratch"
	rm -rf "$dir"
}

run_host() {
	local out rc
	out=$(mktemp)
	set +e
	if [ -n "$binary" ]; then
		# the mounts that hide the prefixes stay in a namespace of its own
		unshare -m --propagation private bash -c "cd $(printf '%q' "$top")
			$(hide_deps_cmd "$binary")
			bats --tap $(printf '%q ' "${bats_files[@]}")" 2>&1 | tee "$out"
	else
		(cd "$top" && bats --tap "${bats_files[@]}") 2>&1 | tee "$out"
	fi
	echo "overpass-vm: bats exit ${PIPESTATUS[0]}" | tee -a "$out"
	set -e
	summarize "$out"
	rc=$?
	rm -f "$out"
	return $rc
}

# boot ACCEL CPU OUT: one boot of the guest on a fresh scratch disk, its
# console to OUT (and the terminal); qemu's exit status
boot() {
	local accel=$1 cpu=$2 out=$3 rc
	make_scratch
	log "booting $(basename "$kdir") ($accel, ${vm_smp} cpus, timeout ${vm_timeout}s)"
	set +e
	timeout -k 10 "$vm_timeout" qemu-system-x86_64 \
		-machine q35,accel="$accel" -cpu "$cpu" -smp "$vm_smp" -m "$vm_mem" \
		-nographic -no-reboot -nic none \
		-kernel "$vmlinuz" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 quiet loglevel=3 overpass_vm=1" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap \
		-drive file="$scratch",format=raw,if=virtio,cache=unsafe \
		</dev/null 2>&1 | tr -d '\r' | tee "$out"
	rc=${PIPESTATUS[0]}
	set -e
	rm -f "$scratch"
	return "$rc"
}

run_vm() {
	local out rc=0
	out=$(mktemp)
	# TCG unless OVERPASS_VM_ACCEL=kvm: under a nested hypervisor a
	# /dev/kvm that is there may not work (seen here: qemu aborting with
	# "failed to set MSR 0x10a" with -cpu max or host, and hanging in the
	# firmware until the timeout with the MSR taken off), so KVM is asked
	# for, and a boot that never reached the guest's init is done again
	# without it
	if [ "${OVERPASS_VM_ACCEL:-tcg}" = kvm ] && [ -w /dev/kvm ]; then
		boot kvm host "$out" || rc=$?
		if ! grep -q '^overpass-vm:' "$out"; then
			log "KVM did not start the guest (qemu exit $rc): booting again without it"
			: >"$out"
			rc=0
			boot tcg max "$out" || rc=$?
		fi
	else
		boot tcg max "$out" || rc=$?
	fi
	[ "$rc" = 124 ] && log "VM timed out after ${vm_timeout}s"
	grep -q '^overpass-vm: bats exit' "$out" || echo "not ok 0 VM run did not finish (qemu exit $rc)" >>"$out"
	# the console's last line may lack its newline (cut by the power off)
	echo
	summarize "$out"
	rc=$?
	rm -f "$out"
	return $rc
}

# hide_deps_cmd BINARY: shell commands that hide the libfuse prefixes
# under empty read-only tmpfs mounts, show what the binary links, and make
# the tests use it.
hide_deps_cmd() {
	local d q
	q=$(printf '%q' "$1")
	for d in "${HIDDEN[@]}"; do
		d=$(printf '%q' "$d")
		echo "[ ! -d $d ] || { mount -t tmpfs -o ro,mode=755 overpass-hidden $d &&
			[ -z \"\$(ls -A $d)\" ]; } || { echo 'not ok 0 cannot hide '$d; exit 1; }"
	done
	echo "echo 'overpass-vm: hidden under empty tmpfs: ${HIDDEN[*]}'"
	echo "ldd $q | sed 's/^/overpass-vm: ldd: /'"
	echo "export OVERPASS=$q OVERPASS_SELF_CONTAINED=$q"
}

# "N passed, N failed, N skipped" from TAP lines; status 1 on any failure.
# A bats run that failed without a failing test (it could not start), or
# ran no test at all, counts as one failure.
summarize() {
	awk '/^ok / { if ($0 ~ /# skip/) s++; else p++ }
		/^not ok / { f++ }
		/^overpass-vm: bats exit [1-9]/ { bad = 1 }
		END { if ((bad || p + s == 0) && !f) f = 1
			printf "%d passed, %d failed, %d skipped\n", p, f, s; exit f > 0 }' "$1"
}

[ $# -ge 1 ] || usage
kernel=$1
shift
bats_files=("$@")
if [ -n "$binary" ]; then
	[ -x "$binary" ] || die "OVERPASS_VM_BINARY=$binary: no such executable"
	binary=$(realpath "$binary")
	[ ${#bats_files[@]} -gt 0 ] || bats_files=("${BINARY_FILES[@]/#/$top/}")
	# the guest's commands put the installed copy in its place
	OVERPASS=$binary
else
	OVERPASS=$(realpath "${OVERPASS:-$top/src/overpass}" 2>/dev/null) ||
		die "no ${OVERPASS:-$top/src/overpass}: run contrib/build.sh first"
	[ -x "$OVERPASS" ] || die "no $OVERPASS: run contrib/build.sh first"
fi
export OVERPASS
[ ${#bats_files[@]} -gt 0 ] || bats_files=("${DEFAULT_FILES[@]/#/$top/}")

case $kernel in
host | 6.18) run_host; exit ;;
6.1) suite=bookworm kver_prefix=6.1.0- kver_re='6\.1\.0-[0-9]+' ;;
6.12) suite=trixie kver_prefix=6.12. kver_re='6\.12\.[0-9]+\+deb[0-9]+' ;;
*) usage ;;
esac
[ "$(id -u)" = 0 ] || die "needs root (downloads into $cache, 9p export of /)"
install_tools
mkdir -p "$cache"
fetch_kernel
build_initramfs
run_vm
