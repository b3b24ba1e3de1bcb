# SPDX-License-Identifier: GPL-2.0-or-later
# Included from Makefile.am.  bats suites run through automake's TAP driver.
# A test that runs 20 minutes (BATS_TEST_TIMEOUT, in seconds) is a hang:
# bats fails it and runs its teardown, so CI reports it instead of running
# out of time.
TEST_EXTENSIONS = .bats
BATS_LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
BATS_LOG_COMPILER = $(BATS)
AM_BATS_LOG_FLAGS = --tap
AM_TESTS_ENVIRONMENT = OVERPASS='$(abs_top_builddir)/src/overpass'; export OVERPASS; \
	TOP_SRCDIR='$(abs_top_srcdir)'; export TOP_SRCDIR; \
	BATS_TEST_TIMEOUT=$${BATS_TEST_TIMEOUT:-1200}; export BATS_TEST_TIMEOUT;

TESTS += \
	tests/001-mount.bats \
	tests/003-self-contained.bats \
	tests/005-unmount.bats \
	tests/010-merged-view.bats \
	tests/020-readdir.bats \
	tests/030-write.bats \
	tests/035-file-ops.bats \
	tests/036-writeback.bats \
	tests/040-differential.bats \
	tests/060-owner-acl.bats \
	tests/065-rootless.bats \
	tests/070-hardlink.bats \
	tests/075-metacopy.bats \
	tests/080-passthrough.bats \
	tests/085-io-uring.bats \
	tests/090-conformance.bats \
	tests/095-limits.bats \
	tests/100-podman.bats \
	tests/101-docker.bats \
	tests/102-buildah.bats \
	tests/103-debian.bats \
	tests/104-podman-restart.bats \
	tests/105-hostile.bats \
	tests/106-validate.bats \
	tests/107-trust.bats \
	tests/108-redirect-suid.bats \
	tests/110-reliability.bats \
	tests/115-stress.bats \
	tests/120-fuzz.bats \
	tests/125-one-file.bats \
	tests/130-restart.bats \
	tests/131-restart-kept.bats \
	tests/132-restart-once.bats \
	tests/133-restart-supervisor.bats \
	tests/140-locks.bats \
	tests/150-kernel.bats
