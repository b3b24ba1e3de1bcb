#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# /init of the initramfs contrib/vm-test.sh builds: load the modules, mount
# the host's root (9p, read-only) with the scratch disk on its /tmp, switch
# to it (switch_root, not chroot: a chrooted process may not create user
# namespaces, which the rootless tests need), run the command the host left
# in /tmp/vm-cmd there, report its exit status on the console, and power
# off.  If anything goes wrong PID 1 exits, the kernel panics and qemu
# (-no-reboot, panic=-1) stops.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do
	insmod /mods/$m 2>/dev/null
done
echo 1 >/proc/sys/kernel/panic_on_oops
h=/host
if mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot $h &&
	mount -t ext4 /dev/vda $h/tmp; then
	mount -t proc proc $h/proc
	mount -t sysfs sys $h/sys
	mount -t devtmpfs dev $h/dev
	chmod 666 $h/dev/fuse # as udev's rule does
	mkdir -p $h/dev/pts $h/dev/shm 2>/dev/null
	mount -t devpts devpts $h/dev/pts
	ln -sf /proc/self/fd $h/dev/fd
	ln -sf /proc/self/fd/0 $h/dev/stdin
	ln -sf /proc/self/fd/1 $h/dev/stdout
	ln -sf /proc/self/fd/2 $h/dev/stderr
	mount -t tmpfs shm $h/dev/shm
	for d in run var/tmp var/lib/containers root; do
		mount -t tmpfs tmp $h/$d 2>/dev/null
	done
	chmod 1777 $h/tmp
	echo "overpass-vm: kernel $(cat /proc/sys/kernel/osrelease)"
	# sysrq's power off runs asynchronously (on 6.12 it comes after the
	# next command): init must not end before it, or the kernel panics.
	# The sleep's own complaint, when the host root is gone before it
	# runs, would be cut off by the power off without its newline and
	# glue itself to the host's summary line (a 6.12 run counted as
	# "no result" so): not on the console
	exec switch_root $h /bin/bash -c '
		export PATH=/usr/sbin:/usr/bin:/sbin:/bin
		bash /tmp/vm-cmd
		echo "overpass-vm: bats exit $?"
		sync
		echo o >/proc/sysrq-trigger
		sleep 60 2>/dev/null'
else
	echo "overpass-vm: cannot mount the host root or the scratch disk"
fi
poweroff -f
