/* fuzz_nfs_url.c — volumed-nfs-fuse's URL parser on arbitrary bytes, with
 * round-trip checks: what parses must print back into URLs that parse to
 * the same parts.
 *
 * The parser is compiled in here (not only taken from libvolumed.a) because
 * tests/fuzz/fuzz.sh builds its targets from a fixed list of directories
 * that does not include drivers/fuse/; in the replay build the archive's
 * copy is then simply not pulled in. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../drivers/fuse/nfs_url.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reparse(const struct nfs_url_parts *u, const char *s, int same_port)
{
	struct nfs_url_parts v;
	if (nfs_url_parse(s, &v, NULL) != 0)
		abort();
	if (strcmp(u->host, v.host) != 0 || strcmp(u->path, v.path) != 0)
		abort();
	if (same_port && (u->port != v.port || u->mountport != v.mountport ||
			  strcmp(u->query, v.query) != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	struct vd_err err = VD_ERR_INIT;
	struct nfs_url_parts u;
	if (nfs_url_parse(s, &u, &err) == 0) {
		if (u.path[0] != '/' || strstr(u.path, "//") || strstr(u.path, "/../") ||
		    strstr(u.path, "/./"))
			abort();
		size_t pl = strlen(u.path);
		if (pl > 1 && u.path[pl - 1] == '/')
			abort();
		char buf[NFS_URL_MAX + 64];
		if (nfs_url_libnfs(&u, buf, sizeof(buf)) == 0)
			check_reparse(&u, buf, 1);
		if (nfs_url_display(&u, buf, sizeof(buf)) == 0)
			check_reparse(&u, buf, 0);
		char esc[2 * (NFS_URL_MAX + 64)];
		if (nfs_url_opt_escape(buf, esc, sizeof(esc)) != 0)
			abort();
		char e[NFS_URL_PATH_MAX], in[NFS_URL_PATH_MAX];
		for (int i = 0; nfs_url_split(u.path, i, e, sizeof(e), in, sizeof(in)) == 1; i++) {
			/* export + inner is the path again ("/" + "/x" is "/x"). */
			char joined[2 * NFS_URL_PATH_MAX];
			snprintf(joined, sizeof(joined), "%s%s", strcmp(e, "/") == 0 && in[0] ? "" : e, in);
			if (strcmp(joined, u.path) != 0)
				abort();
			if (i > NFS_URL_PATH_MAX)
				abort();
		}
	} else if (err.code == 0 || !err.msg[0]) {
		abort();   /* a refusal always says why */
	}

	long v;
	nfs_url_parse_long(s, -1000, 1000, &v);
	char e[64], in[64];
	for (int i = 0; i < 8; i++)
		if (nfs_url_split(s, i, e, sizeof(e), in, sizeof(in)) != 1)
			break;
	char small[16];
	nfs_url_opt_escape(s, small, sizeof(small));
	free(s);
	return 0;
}
