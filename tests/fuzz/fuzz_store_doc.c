/* fuzz_store_doc.c — the store's on-disk document parser. Whatever parses
 * must dump and parse back to the same revision and document, and dumping
 * twice gives the same bytes; whatever fails must say why. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../volumed/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = NULL, *again = NULL;
	uint64_t rev = 0, rev_again = 0;
	struct vd_err err = VD_ERR_INIT;
	int r = vd_store_doc_parse((const char *)data, size, &doc, &rev, &err);
	if (r < 0) {
		if ((r != -EINVAL && r != -EFBIG) || !err.msg[0] || doc || rev)
			abort();
		return 0;
	}
	if (!json_is_object(doc) || rev < 1)
		abort();
	char *text = vd_store_doc_dump(doc, rev);
	if (!text)
		abort();
	size_t len = strlen(text);
	r = vd_store_doc_parse(text, len, &again, &rev_again, NULL);
	/* Compact output can still outgrow the bound ("1e9" is "1000000000.0"). */
	if (r == -EFBIG && len > 1024 * 1024)
		goto out;
	if (r < 0 || rev_again != rev || !json_equal(doc, again))
		abort();
	char *text_again = vd_store_doc_dump(again, rev_again);
	if (!text_again || strcmp(text, text_again) != 0)
		abort();
	free(text_again);
out:
	json_decref(again);
	json_decref(doc);
	free(text);
	return 0;
}
