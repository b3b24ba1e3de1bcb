#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# The libFuzzer harnesses (tests/fuzz/) of the option parser and of the
# readers of on-disk markers a hostile layer controls, in a shortened run:
# contrib/fuzz.sh SECONDS runs them longer.

load helpers.bash

@test "fuzzing the option parser and the marker readers finds no crash (${OVERPASS_FUZZ_SECONDS:-20} s each)" {
	local rc=0
	OVERPASS_FUZZ_DIR=$T/fuzz bash "$BATS_TEST_DIRNAME/../contrib/fuzz.sh" \
		"${OVERPASS_FUZZ_SECONDS:-20}" >"$T/fuzz.log" 2>&1 || rc=$?
	[ "$rc" != 77 ] || skip "$(tail -n 1 "$T/fuzz.log")"
	tail -n 40 "$T/fuzz.log"
	[ "$rc" = 0 ] || { ls "$T/fuzz"/crash-* 2>/dev/null; false; }
	grep -q "stat::number_of_executed_units" "$T/fuzz.log"
}
