/* iscsi_client_check.c — a small CLI over drivers/iscsi_client.h, for the
 * integration tests (tests/integ/test_iscsi_client.sh). One call per run,
 * results as parseable lines on stdout:
 *
 *   iscsi_client_check [-t MS] discover PORTAL      target IQN PORTAL
 *   iscsi_client_check [-t MS] luns PORTAL IQN      lun N disk=0|1 size=B block_size=B
 *                                                     vendor=V product=P
 *   iscsi_client_check [-t MS] info PORTAL IQN LUN  (one such line)
 *   iscsi_client_check [-t MS] pr PORTAL IQN LUN    generation N
 *                                                   keys COUNT [0xKEY...]
 *                                                   reservation none |
 *                                                   reservation holder=0xKEY type=NAME
 *   iscsi_client_check [-t MS] fence PORTAL IQN LUN OWNKEY VICTIMKEY   fenced
 *   iscsi_client_check [-t MS] zero PORTAL IQN LUN OFFSET LENGTH
 *                                                   zeroed offset=O length=L ms=T
 *
 * On failure: "error: ENAME ms=T: message" on stderr, exit 1 (usage: 2).
 * Environment: VD_CHECK_INITIATOR (our IQN), VD_CHECK_CHAP_USER,
 * VD_CHECK_CHAP_PASSWORD, VD_CHECK_CHAP_TARGET_USER,
 * VD_CHECK_CHAP_TARGET_PASSWORD (mutual). Single-threaded. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../drivers/iscsi_client.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int usage(void)
{
	fprintf(stderr, "usage: iscsi_client_check [-t TIMEOUT_MS] discover PORTAL | luns PORTAL IQN |"
		" info PORTAL IQN LUN | pr PORTAL IQN LUN | fence PORTAL IQN LUN OWNKEY VICTIMKEY |"
		" zero PORTAL IQN LUN OFFSET LENGTH\n");
	return 2;
}

static int parse_u64(const char *s, int base, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, base);
	if (errno || end == s || *end)
		return -1;
	*ret = v;
	return 0;
}

static void underscores(char *s)
{
	for (; *s; s++)
		if (*s == ' ')
			*s = '_';
}

static int print_target(const char *iqn, const char *portal, void *userdata)
{
	(void)userdata;
	printf("target %s %s\n", iqn, portal);
	return 0;
}

static int print_lun(const struct vd_iscsi_lun_info *info, void *userdata)
{
	(void)userdata;
	char vendor[sizeof(info->vendor)], product[sizeof(info->product)];
	snprintf(vendor, sizeof(vendor), "%s", info->vendor);
	snprintf(product, sizeof(product), "%s", info->product);
	underscores(vendor);
	underscores(product);
	printf("lun %d disk=%d size=%" PRIu64 " block_size=%u vendor=%s product=%s\n", info->lun,
	       info->is_disk, info->size, info->block_size, vendor, product);
	return 0;
}

int main(int argc, char **argv)
{
	struct vd_iscsi_chap chap = {
		getenv("VD_CHECK_CHAP_USER"), getenv("VD_CHECK_CHAP_PASSWORD"),
		getenv("VD_CHECK_CHAP_TARGET_USER"), getenv("VD_CHECK_CHAP_TARGET_PASSWORD"),
	};
	const char *initiator = getenv("VD_CHECK_INITIATOR");
	struct vd_iscsi_peer peer = {
		.portal = NULL,
		.initiator = initiator && *initiator ? initiator
						     : "iqn.2026-01.io.volumed:client-check",
		.chap = chap.username ? &chap : NULL,
		.timeout_ms = 5000,
	};
	int i = 1;
	if (i + 1 < argc && strcmp(argv[i], "-t") == 0) {
		peer.timeout_ms = atoi(argv[i + 1]);
		i += 2;
	}
	if (argc - i < 2)
		return usage();
	const char *cmd = argv[i];
	peer.portal = argv[i + 1];
	char **a = argv + i + 2;
	int n = argc - i - 2;
	uint64_t lun64 = 0;
	if (n >= 2 && parse_u64(a[1], 10, &lun64) < 0)
		return usage();
	int lun = (int)lun64;

	struct vd_err err = VD_ERR_INIT;
	double t0 = now_ms();
	int rc;
	if (strcmp(cmd, "discover") == 0 && n == 0) {
		rc = vd_iscsi_discover_targets(&peer, print_target, NULL, &err);
	} else if (strcmp(cmd, "luns") == 0 && n == 1) {
		rc = vd_iscsi_list_luns(&peer, a[0], print_lun, NULL, &err);
	} else if (strcmp(cmd, "info") == 0 && n == 2) {
		struct vd_iscsi_lun_info info;
		rc = vd_iscsi_lun_info(&peer, a[0], lun, &info, &err);
		if (rc == 0)
			print_lun(&info, NULL);
	} else if (strcmp(cmd, "pr") == 0 && n == 2) {
		struct vd_iscsi_pr_state st;
		rc = vd_iscsi_pr_read(&peer, a[0], lun, &st, &err);
		if (rc == 0) {
			printf("generation %" PRIu32 "\n", st.generation);
			printf("keys %zu", st.key_count);
			for (size_t k = 0; k < st.key_count && k < VD_ISCSI_PR_KEYS_MAX; k++)
				printf(" 0x%" PRIx64, st.keys[k]);
			printf("\n");
			if (st.reserved)
				printf("reservation holder=0x%" PRIx64 " type=%s\n", st.holder,
				       vd_iscsi_pr_type_name(st.type));
			else
				printf("reservation none\n");
		}
	} else if (strcmp(cmd, "fence") == 0 && n == 4) {
		uint64_t own, victim;
		if (parse_u64(a[2], 16, &own) < 0 || parse_u64(a[3], 16, &victim) < 0)
			return usage();
		rc = vd_iscsi_pr_fence(&peer, a[0], lun, own, victim, &err);
		if (rc == 0)
			printf("fenced\n");
	} else if (strcmp(cmd, "zero") == 0 && n == 4) {
		uint64_t off, len;
		if (parse_u64(a[2], 10, &off) < 0 || parse_u64(a[3], 10, &len) < 0)
			return usage();
		rc = vd_iscsi_zero(&peer, a[0], lun, off, len, &err);
		if (rc == 0)
			printf("zeroed offset=%" PRIu64 " length=%" PRIu64 " ms=%.0f\n", off, len,
			       now_ms() - t0);
	} else {
		return usage();
	}
	if (rc < 0) {
		const char *name = strerrorname_np(-rc);
		fprintf(stderr, "error: %s ms=%.0f: %s\n", name ? name : "E?", now_ms() - t0,
			vd_err_msg(&err));
		return 1;
	}
	fflush(stdout);
	return 0;
}
