/* fuzz_config.c — the config document parser on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "../../volumed/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!doc)
		return 0;
	struct vd_config cfg;
	struct vd_err err = VD_ERR_INIT;
	vd_config_defaults(&cfg);
	vd_config_apply_json(&cfg, doc, &err);
	vd_config_clear(&cfg);
	json_decref(doc);
	return 0;
}
