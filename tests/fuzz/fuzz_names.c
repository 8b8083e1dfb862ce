/* fuzz_names.c — volume names, sizes and option pairs on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../volumed/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct vd_err err = VD_ERR_INIT;
	uint64_t bytes;
	char key[64], value[256], human[32];
	vd_name_check(s, &err);
	if (vd_size_parse(s, &bytes, &err) == 0)
		vd_size_format(bytes, human, sizeof(human));
	vd_opt_pair_parse(s, key, sizeof(key), value, sizeof(value), &err);
	free(s);
	return 0;
}
