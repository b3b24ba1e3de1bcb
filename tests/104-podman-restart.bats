#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# restart=on under a real engine (issue 21): a podman container on the
# Debian minbase image of 103-debian.bats, its root mounted by overpass with
# `mountopt = "restart=on,..."`, runs `dpkg -i` of a few packages and writes
# files while the test kills the container's overpass worker 10 times at
# random moments.  The workload ends with status 0, `dpkg --verify` is
# clean, the files' checksums match (inside the container and in the upper
# layer), the container's mounts (points and types) are those it had
# before, `podman exec` works after every kill, and the supervisor counts
# 10 restarts.  Root, and rootless where the machine allows.

load engines.bash

KILLS=10
# the rootless test's own user (its processes are ended before and after:
# not ovptest, which other suites may be using meanwhile)
RUSER=ovprestart
# 10 deaths within a minute: more than the default restart_limit (5)
RESTART_OPTS="restart=on,restart_limit=0"

teardown() {
	if [ -z "${U:-}" ] && [ -n "${P:-}" ]; then
		timeout 120 $P rm -a -f -t 0 >/dev/null 2>&1 || true
		timeout 120 $P system reset -f >/dev/null 2>&1 || true
	fi
	if [ -n "${U:-}" ] && [ -d "$U" ]; then
		end_user_procs "$RUSER" || true
		engine_cleanup "$U"
	fi
	ovp_teardown
}

# own_engine_state CONFDIR DIR: podman's run-time state (its "alive" file,
# exit files, locks) in DIR, not in /run/libpod with the shared memory
# locks: another root podman on the machine (another test, another
# storage) that resets or refreshes would mark this test's container
# stopped under it
own_engine_state() {
	printf '[engine]\ntmp_dir = "%s"\nlock_type = "file"\n' "$2" >>"$1/containers.conf"
}

# The container's mounts: mount point and file system type, one a line
# (ids, devices and options may differ across a restart)
mounts_of() { # CTR
	$P exec "$1" cat /proc/self/mountinfo |
		awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break; print $5, $(i + 1) }'
}

# stat_of KEY: a value of overpass --stats for the container's root,
# read in the mount namespace that holds it
stat_of() {
	$STATS "$MERGED" | sed -n "s/^$1 //p"
}

# The workload, run in the container: rounds of `dpkg -i` of the packages
# and of files written (through a temporary name, then renamed) whose
# checksums are taken from the copy in /dev/shm (a tmpfs, not overpass),
# until /tmp/stop exists and at least 3 rounds ran.
workload='set -e
mkdir -p /data /dev/shm/data
: >/dev/shm/sums
i=0
while [ ! -e /tmp/stop ] || [ "$i" -lt 3 ]; do
	i=$((i + 1))
	dpkg -i /debs/*.deb >/dev/null
	mkdir -p "/data/r$i" "/dev/shm/data/r$i"
	for j in 1 2 3 4 5 6; do
		f=data/r$i/f$j
		head -c $(( (i * 7 + j * 13) % 97 * 4096 + 100 )) /dev/urandom >"/dev/shm/$f"
		(cd /dev/shm && sha256sum "$f") >>/dev/shm/sums
		cp "/dev/shm/$f" "/$f.tmp"
		mv "/$f.tmp" "/$f"
	done
	echo "round $i" >>/data/log
done
sync
cp /dev/shm/sums /data/sums
echo "rounds $i"'

# restart_flow WHO: the whole test, with $P (the podman command line),
# $STATS (overpass --stats in the namespace of the mounts), $D (the
# directory with debs/) and the image localhost/ovp-debian imported
restart_flow() {
	local who=$1 sup w old i s rounds up t0 times=""
	run_cmd 0 --timeout 120 $P run -d --name ctr --network none \
		-v "$D/debs:/debs:ro" localhost/ovp-debian sleep 100000
	MERGED=$($P inspect --format '{{.GraphDriver.Data.MergedDir}}' ctr)
	up=$($P inspect --format '{{.GraphDriver.Data.UpperDir}}' ctr)
	[ -n "$MERGED" ] && [ -n "$up" ]
	sup=$(stat_of restart.supervisor_pid)
	w=$(stat_of restart.worker_pid)
	echo "# $who: merged $MERGED, supervisor $sup, worker $w" >&3
	[ -n "$sup" ] && [ "$sup" != 0 ] && [ -n "$w" ] && [ "$w" != 0 ] ||
		{ echo "no restart=on supervisor for $MERGED; mountopt not passed on?" >&2; false; }
	assert_contains "$MERGED" "$(tr '\0' ' ' </proc/"$sup"/cmdline)"
	assert_equal 0 "$(stat_of restart.restarts)"
	mounts_of ctr >"$D/mounts.before"
	[ "$(wc -l <"$D/mounts.before")" -gt 3 ]

	$P exec ctr sh -c "$workload" >"$D/workload.out" 2>&1 3>&- &
	local wl=$!
	# seeded, so a failing run can be repeated
	RANDOM=${OVP_SEED:-104}
	for ((i = 1; i <= KILLS; i++)); do
		sleep "$((RANDOM % 20 / 10)).$((RANDOM % 10))"
		kill -0 "$wl" 2>/dev/null ||
			{ echo "the workload ended before kill $i" >&2; cat "$D/workload.out" >&2; false; }
		old=$w
		run_cmd 0 kill -KILL "$old"
		for ((s = 0; s < 200; s++)); do
			w=$(stat_of restart.worker_pid)
			[ -n "$w" ] && [ "$w" != 0 ] && [ "$w" != "$old" ] && break
			sleep 0.05
		done
		[ "$w" != "$old" ] || { echo "no worker after kill $i" >&2; false; }
		t0=$(date +%s%N)
		run_cmd 0 --timeout 30 $P exec ctr true
		times+=" $((($(date +%s%N) - t0) / 1000000))"
	done
	run_cmd 0 $P exec ctr touch /tmp/stop
	local rc=0
	timeout 600 tail --pid="$wl" -f /dev/null || true
	wait "$wl" || rc=$?
	cat "$D/workload.out"
	assert_equal 0 "$rc" "the workload's exit status"
	rounds=$(sed -n 's/^rounds //p' "$D/workload.out")
	echo "# $who: $KILLS kills, $rounds rounds of dpkg -i and writes; podman exec after each kill (ms):$times" >&3

	run_cmd 0 --timeout 120 $P exec ctr sh -c \
		'hello && dpkg --verify hello tree less && echo verified &&
		 dpkg-query -W hello tree less | wc -l &&
		 cd / && sha256sum -c --quiet data/sums && echo sums-ok &&
		 wc -l </data/log'
	assert_contains "Hello, world!" "$output"
	assert_equal verified "${lines[-4]}"
	assert_equal 3 "${lines[-3]}"
	assert_equal sums-ok "${lines[-2]}"
	assert_equal "$rounds" "${lines[-1]}"
	# what the upper layer holds, read past overpass
	$P exec ctr cat /data/sums >"$D/sums"
	assert_equal "$((rounds * 6))" "$(wc -l <"$D/sums")"
	if [ "$who" = root ]; then
		run_cmd 0 sh -c "cd '$up' && sha256sum -c --quiet '$D/sums'"
	else
		run_cmd 0 $P unshare sh -c "cd '$up' && sha256sum -c --quiet '$D/sums'"
	fi

	mounts_of ctr >"$D/mounts.after"
	run_cmd 0 diff "$D/mounts.before" "$D/mounts.after"
	echo "# $who: the container's $(wc -l <"$D/mounts.after") mounts kept:" \
		"$(awk '{print $1}' "$D/mounts.after" | tr '\n' ' ')" >&3
	assert_equal "$KILLS" "$(stat_of restart.restarts)"
	assert_equal "$sup" "$(stat_of restart.supervisor_pid)"

	run_cmd 0 --timeout 120 $P rm -f -t 5 ctr
	run_cmd 0 $P rmi -a -f
}

@test "podman as root, restart=on: dpkg -i and writes while the worker is killed 10 times; dpkg --verify clean, mounts kept" {
	need_ovp
	need_init_root
	need_cmd podman
	need_debian_image
	D=$T
	ln -s "$ROOTFS" "$D/rootfs.tar"
	cp -r "$DEBS" "$D/debs"
	write_storage_conf "$D/conf" "$D/graph" "$D/run" "$RESTART_OPTS"
	own_engine_state "$D/conf" "$D/libpod"
	export CONTAINERS_STORAGE_CONF=$D/conf/storage.conf
	export CONTAINERS_CONF=$D/conf/containers.conf
	P="podman $(engine_runtime_args)"
	STATS="$(mount_program) --stats"
	run_cmd 0 --timeout 300 $P import -q "$D/rootfs.tar" localhost/ovp-debian
	restart_flow root
	run_cmd 0 $P system reset -f
	assert_equal "" "$(pgrep -f -- "upperdir=$D/" || true)" "daemons left"
}

@test "rootless podman, restart=on: dpkg -i and writes while the worker is killed 10 times; dpkg --verify clean, mounts kept" {
	need_ovp
	need_root
	need_cmd podman newuidmap
	need_debian_image
	local u=$RUSER home ovp
	if ! id "$u" >/dev/null 2>&1; then
		run_cmd 0 useradd -m -s /bin/sh "$u"
	fi
	grep -q "^$u:" /etc/subuid || echo "$u:400000:65536" >>/etc/subuid
	grep -q "^$u:" /etc/subgid || echo "$u:400000:65536" >>/etc/subgid
	end_user_procs "$u"
	home=$(getent passwd "$u" | cut -d: -f6)
	U=$(mktemp -d /tmp/ovp-rst.XXXXXX)
	chmod 755 "$U"
	D=$U
	cp "$ROOTFS" "$D/rootfs.tar"
	cp -r "$DEBS" "$D/debs"
	ovp=$(overpass_for_user "$U")
	OVP_MOUNT_PROGRAM=${OVP_MOUNT_PROGRAM:-$ovp} \
		write_storage_conf "$U/conf" "$U/graph" "$U/run" "$RESTART_OPTS"
	own_engine_state "$U/conf" "$U/libpod"
	# rootless, containers-storage takes rootless_storage_path, not graphroot
	sed -i "/^runroot = /a rootless_storage_path = \"$U/graph\"" "$U/conf/storage.conf"
	chown -R "$u:" "$U"
	chmod -R a+rX "$U/debs"
	cd "$U"
	runuser -u "$u" -- mkdir -m 700 "$U/xdg"
	P="runuser -u $u -- env HOME=$home XDG_RUNTIME_DIR=$U/xdg CONTAINERS_STORAGE_CONF=$U/conf/storage.conf CONTAINERS_CONF=$U/conf/containers.conf podman $(engine_runtime_args)"
	# the mount is in the user's namespace: read its statistics there
	STATS="$P unshare ${OVP_MOUNT_PROGRAM:-$ovp} --stats"
	# can this machine run a rootless container at all?
	run_cmd 0 --timeout 300 $P import -q "$D/rootfs.tar" localhost/ovp-debian
	if ! timeout 120 $P run --rm --network none localhost/ovp-debian true \
		>"$U/probe.out" 2>&1 3>&-; then
		skip "rootless podman cannot run a container here: $(tail -n 1 "$U/probe.out")"
	fi
	restart_flow rootless
	run_cmd 0 $P system reset -f
	assert_equal "" "$(pgrep -f -- "upperdir=$U/" || true)" "daemons left"
	end_user_procs "$u"
	cd /
	engine_cleanup "$U"
}
