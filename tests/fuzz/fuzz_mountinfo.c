/* fuzz_mountinfo.c — the /proc/self/mountinfo parser on arbitrary bytes.
 * The input is passed as is (not NUL-terminated): the parser must stay
 * within len. Each entry's fields must be sane C strings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../volumed/mount.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_entry(const struct vd_mountinfo_entry *e, void *userdata)
{
	size_t limit = *(const size_t *)userdata;
	if (e->mount_point[0] != '/' || strlen(e->mount_point) > limit ||
	    e->fstype[0] == '\0' || strlen(e->fstype) > limit || strlen(e->source) > limit)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vd_err err = VD_ERR_INIT;
	int r = vd_mountinfo_parse((const char *)data, size, check_entry, &size, &err);
	if (r != 0 && (r != err.code || err.msg[0] == '\0'))
		abort();   /* a failure always explains itself */
	return 0;
}
