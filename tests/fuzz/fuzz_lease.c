/* fuzz_lease.c — the lease file's parser on arbitrary bytes: what it
 * accepts is one line it could have written (a boot id of 36 characters,
 * a time that prints back the same), what it refuses has a message. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../volumed/lease.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vd_lease l;
	struct vd_err err = VD_ERR_INIT;
	int r = vd_lease_parse((const char *)data, size, &l, &err);
	if (r < 0) {
		if (r != -EINVAL || !vd_err_msg(&err)[0])
			abort();
		return 0;
	}
	char back[128];
	int n = snprintf(back, sizeof(back), "volumed-lease 1 %s %lld\n", l.boot_id, l.until_ms);
	if (strlen(l.boot_id) != VD_LEASE_BOOT_ID_LEN || l.until_ms < 0 || n <= 0 ||
	    (size_t)n > size)
		abort();
	/* leading zeros aside, the text is what a write makes */
	if (memcmp(back, data, 53) != 0)
		abort();
	return 0;
}
