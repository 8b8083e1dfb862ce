/* fuzz_nfs_meta.c — the nfs driver's metadata record parser (what discover
 * reads back from an export anyone may write to) on arbitrary bytes; a
 * record accepted must survive a rebuild and a second parse unchanged.
 * The same bytes also go through the URL parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../drivers/nfs_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vd_err err = VD_ERR_INIT;
	json_t *rec = NULL;
	if (vd_nfs_record_parse((const char *)data, size, &rec, &err) == 0) {
		const char *name = json_string_value(json_object_get(rec, "name"));
		const char *created = json_string_value(json_object_get(rec, "created_at"));
		json_t *spec = json_object_get(rec, "spec");
		struct vd_nfs_spec s;
		if (!name || !created || vd_nfs_spec_read(spec, &s, &err) < 0)
			abort();
		json_t *again = vd_nfs_record_new(name, spec, created);
		char *text = again ? json_dumps(again, JSON_COMPACT) : NULL;
		json_t *back = NULL;
		if (text && (vd_nfs_record_parse(text, strlen(text), &back, &err) < 0 ||
			     !json_equal(again, back)))
			abort();
		json_decref(back);
		free(text);
		json_decref(again);
		json_decref(rec);
	}
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct vd_nfs_url u;
	if (vd_nfs_url_parse(s, "url", &u, &err) == 0) {
		char *joined = vd_nfs_url_join(&u, "v1");
		struct vd_nfs_url u2;
		if (joined && vd_nfs_url_parse(joined, "url", &u2, &err) == 0)
			vd_nfs_url_clear(&u2);
		else if (joined)
			abort();   /* what the driver builds it must read back */
		free(joined);
		vd_nfs_url_clear(&u);
	}
	free(s);
	return 0;
}
