/* fuzz_tgt_show.c — the parser of `tgtadm --op show --mode target` on
 * arbitrary bytes: what it accepts is consistent (names present, counts
 * within bounds and within the number of lines read, "(outgoing)" split
 * off, find agrees), what it refuses has a message, and clear empties. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../drivers/iscsi_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_list(char **list, size_t n)
{
	if (n > 65536 || (n && !list))
		abort();
	for (size_t i = 0; i < n; i++)
		if (!list[i] || !list[i][0])
			abort();
}

/* The entries target t holds, each from a line of its own. */
static size_t check_target(const struct vd_tgt_show *show, size_t i)
{
	const struct vd_tgt_target *t = &show->targets[i];
	const struct vd_tgt_target *found = vd_tgt_show_find(show, t->tid);
	if (!t->iqn || !t->iqn[0] || t->tid <= 0 || !found || found->tid != t->tid || found > t)
		abort();
	if (t->lun_count > 65536 || (t->lun_count && !t->luns) || t->nexus_count < 0 ||
	    t->nexus_count > 65536)
		abort();
	for (size_t k = 0; k < t->lun_count; k++)
		if (t->luns[k].lun < 0 || (t->luns[k].backing &&
					   (!t->luns[k].backing[0] ||
					    strcmp(t->luns[k].backing, "None") == 0)))
			abort();
	check_list(t->accounts, t->account_count);
	check_list(t->outgoing, t->outgoing_count);
	check_list(t->acls, t->acl_count);
	for (size_t k = 0; k < t->account_count; k++) {
		size_t n = strlen(t->accounts[k]);
		if (n > 11 && strcmp(t->accounts[k] + n - 11, " (outgoing)") == 0)
			abort();
	}
	return 1 + t->lun_count + t->account_count + t->outgoing_count + t->acl_count +
	       (size_t)t->nexus_count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vd_tgt_show show = { 0 };
	struct vd_err err = VD_ERR_INIT;
	if (vd_tgt_show_parse((const char *)data, size, &show, &err) < 0) {
		if ((err.code != -EINVAL && err.code != -ENOMEM) || !err.msg[0] || show.targets)
			abort();
		return 0;
	}
	size_t lines = 1, entries = 0;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (show.count > 4096 || (show.count && !show.targets))
		abort();
	for (size_t i = 0; i < show.count; i++)
		entries += check_target(&show, i);
	if (entries > lines)
		abort();
	vd_tgt_show_clear(&show);
	if (show.targets || show.count)
		abort();
	return 0;
}
