// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness of the command line and option parser (params.c):
 * the input is split on NUL bytes into argv.  Any input must give 0 or a
 * negative errno, never a crash, leak or undefined behaviour.
 */
#include "config.h"

#include "overlay.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *buf = malloc(size + 1), *argv[64];
	struct ovl_params p;
	enum ovl_action a;
	int argc = 1;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[0] = "overpass";
	for (size_t i = 0; i <= size && argc < 63;) {
		argv[argc++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	argv[argc] = NULL;
	ovl_params_init(&p);
	ovl_params_parse(&p, argc, argv, &a);
	ovl_params_free(&p);
	free(buf);
	return 0;
}
