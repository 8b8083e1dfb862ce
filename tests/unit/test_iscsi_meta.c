/* test_iscsi_meta.c — the iscsi driver's pure half: settings (the key
 * path in every error, never a CHAP secret), reservation keys, IQNs,
 * volume options and specs, locations and records, and the parser of
 * `tgtadm --op show --mode target` on real tgtd output and on broken,
 * huge and hostile input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../drivers/iscsi_meta.h"

#define B(name, body) "{\"backends\": {\"" name "\": " body "}}"
#define TGT(extra) "{\"provisioner\": \"tgt\", \"portal\": \"10.0.0.5\"" extra "}"
#define STATIC(extra) "{\"provisioner\": \"static\", \"portal\": \"10.0.0.6:3261\"" extra "}"
#define SECRET "Sup3rS3cretValue"

static struct vd_iscsi_settings *settings_ok(const char *text)
{
	json_error_t jerr;
	json_t *j = text ? json_loads(text, 0, &jerr) : NULL;
	if (text && !j)
		fail_msg("bad test JSON: %s", jerr.text);
	struct vd_iscsi_settings *s = NULL;
	struct vd_err err = VD_ERR_INIT;
	int r = vd_iscsi_settings_parse(j, &s, &err);
	json_decref(j);
	if (r < 0)
		fail_msg("settings %s: %s", text, err.msg);
	return s;
}

/* Expects the settings refused with -EINVAL and a message containing
 * want, and never the test secret. */
static void settings_bad(const char *text, const char *want)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	if (!j)
		fail_msg("bad test JSON %s: %s", text, jerr.text);
	struct vd_iscsi_settings *s = NULL;
	struct vd_err err = VD_ERR_INIT;
	int r = vd_iscsi_settings_parse(j, &s, &err);
	json_decref(j);
	if (r != -EINVAL || !strstr(err.msg, want))
		fail_msg("settings %s: got %d '%s', want -EINVAL with '%s'", text, r, err.msg, want);
	if (strstr(err.msg, SECRET) || strstr(err.msg, "S3cret"))
		fail_msg("settings %s: the message shows a secret: %s", text, err.msg);
	assert_null(s);
}

/* ---- settings ------------------------------------------------------------ */

static void test_settings_defaults(void **state)
{
	(void)state;
	struct vd_iscsi_settings *s = settings_ok(NULL);
	assert_int_equal(s->count, 0);
	assert_null(s->default_backend);
	assert_null(s->helper);
	assert_null(s->initiator);
	assert_int_equal(s->reservation_key, 0);
	assert_int_equal(s->preempt, 0);
	vd_iscsi_settings_free(s);

	s = settings_ok("{\"backends\": {}}");
	assert_int_equal(s->count, 0);
	vd_iscsi_settings_free(s);

	s = settings_ok(B("Main_1", TGT("")));
	assert_int_equal(s->count, 1);
	const struct vd_iscsi_backend *b = s->default_backend;
	assert_ptr_equal(b, &s->backends[0]);   /* the only backend */
	assert_string_equal(b->name, "Main_1");
	assert_int_equal(b->provisioner, VD_ISCSI_TGT);
	assert_string_equal(b->portal, "10.0.0.5:3260");
	assert_int_equal(b->timeout_ms, VD_ISCSI_TIMEOUT_DEFAULT);
	assert_int_equal(b->mode, VD_ISCSI_AUTO);
	assert_string_equal(b->fstype, "ext4");
	assert_int_equal(b->wipe, 0);
	assert_int_equal(b->max_volume_size, 0);
	assert_null(b->chap.username);
	assert_null(b->chap.password);
	assert_null(b->chap.target_username);
	assert_null(b->chap.target_password);
	assert_string_equal(b->target, "iqn.2026-01.io.volumed:main-1");
	assert_true(vd_iscsi_iqn_valid(b->target));
	assert_int_equal(b->tid, 1);
	assert_int_equal(b->control_port, 0);
	assert_string_equal(b->tgtadm, "tgtadm");
	assert_null(b->pool_dir);
	assert_int_equal(b->pool_size, 0);
	assert_null(b->targets);
	assert_int_equal(b->target_count, 0);
	vd_iscsi_settings_free(s);

	/* A static backend: no tgt defaults; no targets means discovery. */
	s = settings_ok(B("pool", STATIC("")));
	b = s->default_backend;
	assert_int_equal(b->provisioner, VD_ISCSI_STATIC);
	assert_string_equal(b->portal, "10.0.0.6:3261");
	assert_null(b->target);
	assert_null(b->tgtadm);
	assert_null(b->targets);
	vd_iscsi_settings_free(s);
	vd_iscsi_settings_free(NULL);
}

static void test_settings_full(void **state)
{
	(void)state;
	struct vd_iscsi_settings *s = settings_ok(
		"{\"backends\": {"
		"\"a\": {\"provisioner\": \"tgt\", \"portal\": \"[::1]:3261\", \"timeout_ms\": 2500,"
		" \"mode\": \"fuse\", \"fstype\": \"xfs\", \"wipe\": true,"
		" \"max_volume_size\": \"10G\", \"target\": \"iqn.2003-01.org.example:pool\","
		" \"tid\": 65535, \"control_port\": 947, \"tgtadm\": \"/usr/sbin/tgtadm\","
		" \"pool_dir\": \"/var/lib/volumed pool/a\", \"pool_size\": \"512Mi\","
		" \"chap\": {\"username\": \"u1\", \"password\": \"p w!\","
		"  \"target_username\": \"t1\", \"target_password\": \"tp\"}},"
		"\"b\": {\"provisioner\": \"static\", \"portal\": \"san.example.com\","
		" \"mode\": \"kernel\", \"max_volume_size\": 1073741824,"
		" \"chap\": {\"username\": \"u2\", \"password\": \"x\"},"
		" \"targets\": [{\"target\": \"iqn.2026-01.com.example:t1\", \"luns\": [1, 3, 16383, 0]},"
		"  {\"target\": \"iqn.2026-01.com.example:t2\"}]},"
		"\"c\": {\"provisioner\": \"static\", \"portal\": \"[fe80::1]\", \"targets\": []}},"
		"\"default_backend\": \"b\", \"helper\": \"/opt/vd/volumed-iscsi-fuse\","
		"\"initiator\": \"iqn.2026-01.io.volumed:host-1\", \"reservation_key\": \"0x1F\","
		"\"preempt\": true}");
	assert_int_equal(s->count, 3);
	assert_string_equal(s->default_backend->name, "b");
	assert_string_equal(s->helper, "/opt/vd/volumed-iscsi-fuse");
	assert_string_equal(s->initiator, "iqn.2026-01.io.volumed:host-1");
	assert_int_equal(s->reservation_key, 0x1f);
	assert_int_equal(s->preempt, 1);
	char names[64];
	vd_iscsi_backend_names(s, names, sizeof(names));
	assert_string_equal(names, "a, b, c");

	const struct vd_iscsi_backend *b = vd_iscsi_backend_find(s, "a");
	assert_non_null(b);
	assert_string_equal(b->portal, "[::1]:3261");
	assert_int_equal(b->timeout_ms, 2500);
	assert_int_equal(b->mode, VD_ISCSI_FUSE);
	assert_string_equal(b->fstype, "xfs");
	assert_int_equal(b->wipe, 1);
	assert_int_equal(b->max_volume_size, 10000000000ULL);
	assert_string_equal(b->target, "iqn.2003-01.org.example:pool");
	assert_int_equal(b->tid, 65535);
	assert_int_equal(b->control_port, 947);
	assert_string_equal(b->tgtadm, "/usr/sbin/tgtadm");
	assert_string_equal(b->pool_dir, "/var/lib/volumed pool/a");
	assert_int_equal(b->pool_size, 512ULL << 20);
	assert_string_equal(b->chap.username, "u1");
	assert_string_equal(b->chap.password, "p w!");
	assert_string_equal(b->chap.target_username, "t1");
	assert_string_equal(b->chap.target_password, "tp");

	b = vd_iscsi_backend_find(s, "b");
	assert_string_equal(b->portal, "san.example.com:3260");
	assert_int_equal(b->mode, VD_ISCSI_KERNEL);
	assert_int_equal(b->max_volume_size, 1073741824);
	assert_null(b->chap.target_username);
	assert_int_equal(b->target_count, 2);
	assert_string_equal(b->targets[0].iqn, "iqn.2026-01.com.example:t1");
	assert_int_equal(b->targets[0].lun_count, 4);
	assert_int_equal(b->targets[0].luns[2], 16383);
	assert_int_equal(b->targets[0].luns[3], 0);
	assert_string_equal(b->targets[1].iqn, "iqn.2026-01.com.example:t2");
	assert_null(b->targets[1].luns);   /* every disk LUN */
	assert_int_equal(b->targets[1].lun_count, 0);

	b = vd_iscsi_backend_find(s, "c");
	assert_string_equal(b->portal, "[fe80::1]:3260");
	assert_int_equal(b->target_count, 0);
	assert_null(vd_iscsi_backend_find(s, "d"));
	assert_null(vd_iscsi_backend_find(s, NULL));
	vd_iscsi_settings_free(s);

	/* Two backends, no default_backend: none chosen. */
	s = settings_ok("{\"backends\": {\"a\": " TGT("") ", \"b\": " STATIC("") "}}");
	assert_null(s->default_backend);
	vd_iscsi_settings_free(s);

	/* Other portal forms. */
	const char *portals[][2] = {
		{ "h", "h:3260" }, { "h-1.example_x:1", "h-1.example_x:1" },
		{ "192.0.2.1:65535", "192.0.2.1:65535" }, { "[::ffff:192.0.2.1]:9", "[::ffff:192.0.2.1]:9" },
	};
	for (size_t i = 0; i < sizeof(portals) / sizeof(portals[0]); i++) {
		char text[256];
		snprintf(text, sizeof(text), B("x", "{\"provisioner\": \"tgt\", \"portal\": \"%s\"}"),
			 portals[i][0]);
		s = settings_ok(text);
		assert_string_equal(s->backends[0].portal, portals[i][1]);
		vd_iscsi_settings_free(s);
	}
	/* The size forms; a plain program name for tgtadm. */
	s = settings_ok(B("x", TGT(", \"max_volume_size\": \"16Mi\", \"pool_size\": 17000000, "
				   "\"tgtadm\": \"tgtadm-2.0\"")));
	assert_int_equal(s->backends[0].max_volume_size, 16ULL << 20);
	assert_int_equal(s->backends[0].pool_size, 17000000);
	assert_string_equal(s->backends[0].tgtadm, "tgtadm-2.0");
	vd_iscsi_settings_free(s);
}

static void test_settings_errors(void **state)
{
	(void)state;
	settings_bad("[]", "drivers.iscsi: expected an object with keys backends, default_backend");
	settings_bad("{\"colour\": 1}", "drivers.iscsi.colour: unknown key; accepted: backends, "
		     "default_backend, helper, initiator, reservation_key, preempt");
	settings_bad("{\"backends\": []}", "drivers.iscsi.backends: expected an object of named "
		     "backends, got an array");
	settings_bad(B("main", "3"), "drivers.iscsi.backends.main: expected an object with keys "
		     "provisioner, portal");
	settings_bad(B("../x", TGT("")), "backend name '../x' is not usable; allowed: "
		     "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
	settings_bad(B("a234567890123456789012345678901234567890123456789012345678901234x", TGT("")),
		     "is not usable");
	settings_bad(B("main", "{\"portal\": \"h\"}"), "drivers.iscsi.backends.main.provisioner: "
		     "missing; expected tgt or static");
	settings_bad(B("main", "{\"provisioner\": \"lio\", \"portal\": \"h\"}"),
		     "drivers.iscsi.backends.main.provisioner: 'lio' is not one of tgt, static");
	settings_bad(B("main", "{\"provisioner\": 1, \"portal\": \"h\"}"),
		     "drivers.iscsi.backends.main.provisioner: expected tgt, static, got an integer");
	settings_bad(B("main", "{\"provisioner\": \"tgt\"}"),
		     "drivers.iscsi.backends.main.portal: missing; expected HOST, HOST:PORT or "
		     "[IPv6]:PORT");
	settings_bad(B("main", TGT(", \"speed\": 1")), "drivers.iscsi.backends.main.speed: "
		     "unknown key; accepted: provisioner, portal, timeout_ms");

	/* Portals. */
	const char *portal_bad[][2] = {
		{ "", "the host is empty" },
		{ ":3260", "the host is empty" },
		{ "h:0", "'h:0' has a bad port; expected HOST, HOST:PORT or [IPv6]:PORT with PORT "
		  "from 1 to 65535" },
		{ "h:65536", "'h:65536' has a bad port" },
		{ "h:", "'h:' has a bad port" },
		{ "h:32x", "'h:32x' has a bad port" },
		{ "h:-1", "'h:-1' has a bad port" },
		{ "::1", "'::1': an IPv6 address needs brackets" },
		{ "fe80::1:3260", "'fe80::1:3260': an IPv6 address needs brackets" },
		{ "[::1", "'[::1' has no IPv6 address in brackets" },
		{ "[host]:1", "'[host]:1' has no IPv6 address in brackets" },
		{ "[::1]x", "'[::1]x' has a bad port" },
		{ "h o", "the host has ' '" },
		{ "h/x", "the host has '/'" },
		{ "iscsi://h:3260", "'iscsi://h:3260' is a URL; expected HOST, HOST:PORT or [IPv6]:PORT" },
	};
	for (size_t i = 0; i < sizeof(portal_bad) / sizeof(portal_bad[0]); i++) {
		char text[256], want[256];
		snprintf(text, sizeof(text), B("m", "{\"provisioner\": \"tgt\", \"portal\": \"%s\"}"),
			 portal_bad[i][0]);
		snprintf(want, sizeof(want), "drivers.iscsi.backends.m.portal: %s", portal_bad[i][1]);
		settings_bad(text, want);
	}
	settings_bad(B("m", "{\"provisioner\": \"tgt\", \"portal\": 3260}"),
		     "drivers.iscsi.backends.m.portal: expected a portal like \"10.0.0.5:3260\", got "
		     "an integer");

	/* Common keys. */
	settings_bad(B("m", TGT(", \"timeout_ms\": 999")), "drivers.iscsi.backends.m.timeout_ms: "
		     "expected an integer from 1000 to 600000 (milliseconds)");
	settings_bad(B("m", TGT(", \"timeout_ms\": 600001")), "timeout_ms: expected an integer");
	settings_bad(B("m", TGT(", \"timeout_ms\": \"5000\"")), "timeout_ms: expected an integer");
	settings_bad(B("m", TGT(", \"timeout_ms\": 5000.5")), "timeout_ms: expected an integer");
	settings_bad(B("m", TGT(", \"mode\": \"user\"")), "drivers.iscsi.backends.m.mode: 'user' "
		     "is not one of auto, kernel, fuse");
	settings_bad(B("m", TGT(", \"fstype\": \"btrfs\"")), "drivers.iscsi.backends.m.fstype: "
		     "'btrfs' is not one of ext4, xfs");
	settings_bad(B("m", TGT(", \"wipe\": \"true\"")), "drivers.iscsi.backends.m.wipe: "
		     "expected true or false, got a string");
	settings_bad(B("m", TGT(", \"wipe\": 1")), "wipe: expected true or false, got an integer");
	const char *sizes_bad[] = { "\"lots\"", "\"15Mi\"", "0", "-5", "16777215", "\"\"", "1.5e9",
				    "true", "\"10 G\"", "\"99999999999999999999\"" };
	for (size_t i = 0; i < sizeof(sizes_bad) / sizeof(sizes_bad[0]); i++) {
		char text[256];
		snprintf(text, sizeof(text), B("m", TGT(", \"max_volume_size\": %s")), sizes_bad[i]);
		settings_bad(text, "drivers.iscsi.backends.m.max_volume_size: expected a size from "
			     "16Mi to 8 EiB like \"10G\" or \"512Mi\", or an integer of bytes");
		snprintf(text, sizeof(text), B("m", TGT(", \"pool_size\": %s")), sizes_bad[i]);
		settings_bad(text, "drivers.iscsi.backends.m.pool_size: expected a size");
	}

	/* tgt keys. */
	settings_bad(B("m", TGT(", \"target\": \"iqn.2026-13.x:y\"")),
		     "drivers.iscsi.backends.m.target: 'iqn.2026-13.x:y' is not an IQN like "
		     "iqn.2026-01.com.example:name");
	settings_bad(B("m", TGT(", \"target\": \"IQN.2026-01.X:Y\"")), "is not an IQN");
	settings_bad(B("m", TGT(", \"target\": [\"iqn.2026-01.x:y\"]")),
		     "drivers.iscsi.backends.m.target: expected an IQN like");
	settings_bad(B("m", TGT(", \"tid\": 0")), "drivers.iscsi.backends.m.tid: expected an "
		     "integer from 1 to 65535");
	settings_bad(B("m", TGT(", \"tid\": 65536")), "tid: expected an integer from 1 to 65535");
	settings_bad(B("m", TGT(", \"control_port\": -1")), "drivers.iscsi.backends.m.control_port: "
		     "expected an integer from 0 to 32767");
	settings_bad(B("m", TGT(", \"control_port\": 32768")), "control_port: expected an integer");
	const char *tgtadm_bad[] = { "\"\"", "\"bin/tgtadm\"", "\"tgtadm;rm\"", "\"/a/../tgtadm\"",
				     "\"-x\"", "\"..\"", "5", "\"tgt adm\"" };
	for (size_t i = 0; i < sizeof(tgtadm_bad) / sizeof(tgtadm_bad[0]); i++) {
		char text[256];
		snprintf(text, sizeof(text), B("m", TGT(", \"tgtadm\": %s")), tgtadm_bad[i]);
		settings_bad(text, "drivers.iscsi.backends.m.tgtadm: expected a program name like "
			     "\"tgtadm\" ([A-Za-z0-9._+-], no '/') or an absolute path");
	}
	const char *dirs_bad[] = { "\"rel/dir\"", "\"/a/../b\"", "\"/a/..\"", "\"/a\\nb\"", "\"\"" };
	for (size_t i = 0; i < sizeof(dirs_bad) / sizeof(dirs_bad[0]); i++) {
		char text[256];
		snprintf(text, sizeof(text), B("m", TGT(", \"pool_dir\": %s")), dirs_bad[i]);
		settings_bad(text, "is not an absolute path without control characters or '..' "
			     "components");
	}
	settings_bad(B("m", TGT(", \"pool_dir\": 1")), "drivers.iscsi.backends.m.pool_dir: "
		     "expected an absolute path, got an integer");

	/* Keys of the other provisioner. */
	settings_bad(B("m", TGT(", \"targets\": []")), "drivers.iscsi.backends.m.targets: belongs "
		     "to provisioner static; this backend's provisioner is tgt");
	const char *tgt_keys[] = { "target", "tid", "control_port", "tgtadm", "pool_dir",
				   "pool_size" };
	for (size_t i = 0; i < sizeof(tgt_keys) / sizeof(tgt_keys[0]); i++) {
		char text[256], want[256];
		snprintf(text, sizeof(text), B("m", STATIC(", \"%s\": 1")), tgt_keys[i]);
		snprintf(want, sizeof(want), "drivers.iscsi.backends.m.%s: belongs to provisioner "
			 "tgt; this backend's provisioner is static", tgt_keys[i]);
		settings_bad(text, want);
	}

	/* Static targets. */
	settings_bad(B("m", STATIC(", \"targets\": {}")), "drivers.iscsi.backends.m.targets: "
		     "expected an array of at most 4096 objects");
	settings_bad(B("m", STATIC(", \"targets\": [3]")), "drivers.iscsi.backends.m.targets[0]: "
		     "expected an object {\"target\": IQN, \"luns\": [N, ...]}, got an integer");
	settings_bad(B("m", STATIC(", \"targets\": [{}]")),
		     "drivers.iscsi.backends.m.targets[0].target: missing");
	settings_bad(B("m", STATIC(", \"targets\": [{\"luns\": [1]}]")), "targets[0].target: missing");
	settings_bad(B("m", STATIC(", \"targets\": [{\"target\": \"iqn.2026-01.a:b\", \"lun\": 1}]")),
		     "drivers.iscsi.backends.m.targets[0].lun: unknown key; accepted: target, luns");
	settings_bad(B("m", STATIC(", \"targets\": [{\"target\": \"x\"}]")),
		     "drivers.iscsi.backends.m.targets[0].target: 'x' is not an IQN");
	settings_bad(B("m", STATIC(", \"targets\": [{\"target\": \"iqn.2026-01.a:b\"}, "
				   "{\"target\": \"iqn.2026-01.a:c\", \"luns\": [16384]}]")),
		     "drivers.iscsi.backends.m.targets[1].luns[0]: expected a LUN number from 0 to "
		     "16383");
	settings_bad(B("m", STATIC(", \"targets\": [{\"target\": \"iqn.2026-01.a:b\", "
				   "\"luns\": [1, -1]}]")), "targets[0].luns[1]: expected a LUN number");
	settings_bad(B("m", STATIC(", \"targets\": [{\"target\": \"iqn.2026-01.a:b\", "
				   "\"luns\": [\"1\"]}]")), "targets[0].luns[0]: expected a LUN number");
	settings_bad(B("m", STATIC(", \"targets\": [{\"target\": \"iqn.2026-01.a:b\", "
				   "\"luns\": [2, 5, 2]}]")),
		     "drivers.iscsi.backends.m.targets[0].luns: LUN 2 is listed twice");
	settings_bad(B("m", STATIC(", \"targets\": [{\"target\": \"iqn.2026-01.a:b\", "
				   "\"luns\": []}]")),
		     "targets[0].luns: expected a non-empty array of LUN numbers (omit luns for "
		     "every disk LUN)");
	settings_bad(B("m", STATIC(", \"targets\": [{\"target\": \"iqn.2026-01.a:b\"}, "
				   "{\"target\": \"iqn.2026-01.a:b\", \"luns\": [1]}]")),
		     "drivers.iscsi.backends.m.targets: target iqn.2026-01.a:b is listed twice");

	/* Settings-level keys. */
	settings_bad("{\"backends\": {\"main\": " TGT("") "}, \"default_backend\": \"other\"}",
		     "drivers.iscsi.default_backend: 'other' is not a backend; configured: main");
	settings_bad("{\"default_backend\": \"main\"}", "drivers.iscsi.default_backend: 'main' "
		     "is not a backend; configured: (none configured)");
	settings_bad("{\"default_backend\": 3}", "drivers.iscsi.default_backend: expected a "
		     "backend's name, got an integer");
	settings_bad("{\"helper\": \"volumed-iscsi-fuse\"}", "drivers.iscsi.helper: "
		     "'volumed-iscsi-fuse' is not an absolute path");
	settings_bad("{\"helper\": false}", "drivers.iscsi.helper: expected an absolute path");
	settings_bad("{\"initiator\": \"iqn.x\"}", "drivers.iscsi.initiator: 'iqn.x' is not an "
		     "IQN like iqn.2026-01.com.example:name ([a-z0-9.-:], at most 223 bytes)");
	settings_bad("{\"reservation_key\": \"0\"}", "drivers.iscsi.reservation_key: reservation "
		     "key '0' is 0; expected 1 to 16 hex digits, 0x optional, not 0");
	settings_bad("{\"reservation_key\": \"xyz\"}", "drivers.iscsi.reservation_key: "
		     "reservation key 'xyz' is not 1 to 16 hex digits");
	settings_bad("{\"reservation_key\": 5}", "drivers.iscsi.reservation_key: expected a "
		     "string of 1 to 16 hex digits");
	settings_bad("{\"preempt\": \"yes\"}", "drivers.iscsi.preempt: expected true or false, "
		     "got a string");
}

#define CHAP(body) B("m", TGT(", \"chap\": " body))

/* Bad CHAP settings: the message names the key, never the secret. */
static void test_settings_chap_secrets(void **state)
{
	(void)state;
	settings_bad(CHAP("\"" SECRET "\""), "drivers.iscsi.backends.m.chap: expected an object "
		     "with keys username, password, target_username, target_password, got a string");
	settings_bad(CHAP("{\"password\": \"" SECRET "\"}"),
		     "drivers.iscsi.backends.m.chap: username and password go together");
	settings_bad(CHAP("{\"username\": \"u\"}"), "chap: username and password go together");
	const char *bad_passwords[] = {
		"\"" SECRET "\\n\"", "\"" SECRET "\\u00e9\"", "\"\"", "\"\\t" SECRET "\"",
		"\"" SECRET "\\u007f\"", "[\"" SECRET "\"]",
	};
	for (size_t i = 0; i < sizeof(bad_passwords) / sizeof(bad_passwords[0]); i++) {
		char text[512];
		snprintf(text, sizeof(text), CHAP("{\"username\": \"u\", \"password\": %s}"),
			 bad_passwords[i]);
		settings_bad(text, "drivers.iscsi.backends.m.chap.password: expected a string of 1 "
			     "to 255 printable ASCII characters");
		snprintf(text, sizeof(text), CHAP("{\"username\": \"u\", \"password\": \"pw\", "
						  "\"target_username\": \"t\", "
						  "\"target_password\": %s}"), bad_passwords[i]);
		settings_bad(text, "drivers.iscsi.backends.m.chap.target_password: expected a string");
	}
	/* 256 bytes: one too many. */
	char text[1024], pw[VD_ISCSI_SECRET_MAX + 2];
	for (size_t i = 0; i <= VD_ISCSI_SECRET_MAX; i++)
		pw[i] = SECRET[i % (sizeof(SECRET) - 1)];
	pw[VD_ISCSI_SECRET_MAX + 1] = '\0';
	snprintf(text, sizeof(text), CHAP("{\"username\": \"u\", \"password\": \"%s\"}"), pw);
	settings_bad(text, "chap.password: expected a string of 1 to 255 printable ASCII");
	pw[VD_ISCSI_SECRET_MAX] = '\0';   /* 255 bytes: fine */
	snprintf(text, sizeof(text), CHAP("{\"username\": \"u\", \"password\": \"%s\"}"), pw);
	struct vd_iscsi_settings *s = settings_ok(text);
	assert_string_equal(s->backends[0].chap.password, pw);
	vd_iscsi_settings_free(s);

	settings_bad(CHAP("{\"username\": \"u 1\", \"password\": \"" SECRET "\"}"),
		     "drivers.iscsi.backends.m.chap.username: expected a string of 1 to 255 "
		     "printable ASCII characters without spaces");
	settings_bad(CHAP("{\"username\": \"\", \"password\": \"" SECRET "\"}"),
		     "chap.username: expected a string");
	settings_bad(CHAP("{\"username\": \"u\", \"password\": \"" SECRET "\", "
			  "\"target_password\": \"" SECRET "\"}"),
		     "drivers.iscsi.backends.m.chap: target_username and target_password go together");
	settings_bad(CHAP("{\"target_username\": \"t\", \"target_password\": \"" SECRET "\"}"),
		     "drivers.iscsi.backends.m.chap: mutual CHAP (target_username, target_password) "
		     "needs username and password too");
	settings_bad(CHAP("{\"username\": \"u\", \"password\": \"pw\", "
			  "\"secret\": \"" SECRET "\"}"),
		     "drivers.iscsi.backends.m.chap.secret: unknown key; accepted: username, "
		     "password, target_username, target_password");
	/* A later key fails after CHAP was read. */
	settings_bad(B("m", TGT(", \"chap\": {\"username\": \"u\", \"password\": \"" SECRET "\"}, "
				"\"tid\": 0")), "drivers.iscsi.backends.m.tid: expected an integer");
	/* Credentials in the portal are refused without being echoed. */
	settings_bad(B("m", "{\"provisioner\": \"tgt\", \"portal\": \"u:" SECRET "@h:3260\"}"),
		     "drivers.iscsi.backends.m.portal: credentials do not belong in the portal "
		     "(use chap)");
}

/* ---- reservation keys and IQNs -------------------------------------------- */

static void test_keys(void **state)
{
	(void)state;
	/* FNV-1a 64 of "volumed:" + id; stable forever (keys outlive daemons). */
	assert_true(vd_iscsi_key_from_node("node-a") == 0x3dfb4f0db9703987ULL);
	assert_true(vd_iscsi_key_from_node("n1") == 0x72a9ff201a76adb4ULL);
	assert_true(vd_iscsi_key_from_node("") == 0xd701ac7efd805891ULL);
	assert_true(vd_iscsi_key_from_node(NULL) == 0xd701ac7efd805891ULL);
	assert_true(vd_iscsi_key_from_node("node-a") != vd_iscsi_key_from_node("node-b"));

	char buf[32];
	vd_iscsi_key_format(0x3dfb4f0db9703987ULL, buf, sizeof(buf));
	assert_string_equal(buf, "0x3dfb4f0db9703987");
	vd_iscsi_key_format(0x1f, buf, sizeof(buf));
	assert_string_equal(buf, "0x000000000000001f");
	vd_iscsi_key_format(UINT64_MAX, buf, 19);
	assert_string_equal(buf, "0xffffffffffffffff");

	struct vd_err err = VD_ERR_INIT;
	const struct { const char *s; uint64_t key; } good[] = {
		{ "0x1f", 0x1f }, { "1F", 0x1f }, { "0X00000000000000aB", 0xab },
		{ "ffffffffffffffff", UINT64_MAX }, { "0x0000000000000001", 1 },
		{ "0x3dfb4f0db9703987", 0x3dfb4f0db9703987ULL }, { "10", 0x10 },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t key = 0;
		if (vd_iscsi_key_parse(good[i].s, &key, &err) < 0 || key != good[i].key)
			fail_msg("key %s: %s", good[i].s, err.msg);
	}
	const char *bad[] = { "", "0x", "0", "0x0000", "00000000000000000", "12345678901234567",
			      "0x12345678901234567", "0xg", " 1", "1 ", "-1", "+1", "0x0x1", "x1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t key = 7;
		vd_err_clear(&err);
		if (vd_iscsi_key_parse(bad[i], &key, &err) != -EINVAL || key != 7 ||
		    !strstr(err.msg, "1 to 16 hex digits, 0x optional, not 0"))
			fail_msg("key '%s' accepted or wrong message: %s", bad[i], err.msg);
	}
	uint64_t key = 7;
	assert_int_equal(vd_iscsi_key_parse(NULL, &key, &err), -EINVAL);
	assert_int_equal(vd_iscsi_key_parse("0", &key, NULL), -EINVAL);
	/* What key_format writes, key_parse reads. */
	vd_iscsi_key_format(vd_iscsi_key_from_node("n1"), buf, sizeof(buf));
	assert_int_equal(vd_iscsi_key_parse(buf, &key, &err), 0);
	assert_true(key == vd_iscsi_key_from_node("n1"));
}

static void test_iqn(void **state)
{
	(void)state;
	const char *good[] = {
		"iqn.2026-01.io.volumed:t", "iqn.2003-01.org.linux-iscsi.host:sn.1234",
		"iqn.1999-12.x", "iqn.2026-01.a:b:c.d-e", "iqn.0000-01.0",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!vd_iscsi_iqn_valid(good[i]))
			fail_msg("IQN %s refused", good[i]);
	const char *bad[] = {
		NULL, "", "iqn.", "iqn.2026-01.", "iqn.2026-01", "iqn.2026-00.x", "iqn.2026-13.x",
		"iqn.26-01.x", "iqn.2026-1.x", "iqn.2026-011.x", "iqn.2026/01.x", "iqn-2026-01.x",
		"IQN.2026-01.x", "iqn.2026-01.X", "iqn.2026-01.x y", "iqn.2026-01.x_y",
		"eui.02004567a425678d", "naa.52004567ba64678d", "iqn.2026-01.x/y", "iqn.2a26-01.x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vd_iscsi_iqn_valid(bad[i]))
			fail_msg("IQN %s accepted", bad[i] ? bad[i] : "(null)");
	char long_iqn[300] = "iqn.2026-01.io.volumed:";
	memset(long_iqn + strlen(long_iqn), 'a', 223 - strlen(long_iqn));
	long_iqn[223] = '\0';
	assert_true(vd_iscsi_iqn_valid(long_iqn));
	long_iqn[223] = 'a';
	long_iqn[224] = '\0';
	assert_false(vd_iscsi_iqn_valid(long_iqn));

	char buf[256];
	const char *ids[][2] = {
		{ "node-a", "iqn.2026-01.io.volumed:node-a" },
		{ "Node_A.b:c", "iqn.2026-01.io.volumed:node-a.b:c" },
		{ "", "iqn.2026-01.io.volumed:node" },
		{ "h\xc3\xa9 x/y", "iqn.2026-01.io.volumed:h---x-y" },
		{ "k8s-worker-01.example.com", "iqn.2026-01.io.volumed:k8s-worker-01.example.com" },
	};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		vd_iscsi_initiator_from_node(ids[i][0], buf, sizeof(buf));
		assert_string_equal(buf, ids[i][1]);
		assert_true(vd_iscsi_iqn_valid(buf));
	}
	vd_iscsi_initiator_from_node(NULL, buf, sizeof(buf));
	assert_string_equal(buf, "iqn.2026-01.io.volumed:node");
	/* Long ids are cut to 223 bytes, still valid. */
	char id[600];
	memset(id, 'N', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	vd_iscsi_initiator_from_node(id, buf, sizeof(buf));
	assert_int_equal(strlen(buf), 223);
	assert_true(vd_iscsi_iqn_valid(buf));
	/* A small buffer truncates, NUL-terminated. */
	vd_iscsi_initiator_from_node("node-a", buf, 10);
	assert_string_equal(buf, "iqn.2026-");
	buf[0] = 'x';
	vd_iscsi_initiator_from_node("node-a", buf, 0);
	assert_int_equal(buf[0], 'x');
}

/* ---- options and specs ------------------------------------------------------ */

static const char *const two_backends =
	"{\"backends\": {"
	"\"main\": {\"provisioner\": \"tgt\", \"portal\": \"h\", \"max_volume_size\": \"10G\"},"
	"\"spare\": {\"provisioner\": \"static\", \"portal\": \"h\", \"fstype\": \"xfs\","
	" \"wipe\": true}},"
	" \"default_backend\": \"main\", \"preempt\": true}";

/* Parses options given as JSON text; returns the spec, or NULL with err. */
static json_t *options(const struct vd_iscsi_settings *s, const char *text, struct vd_err *err)
{
	json_t *opts = text ? json_loads(text, 0, NULL) : NULL;
	json_t *spec = NULL;
	if (text)
		assert_non_null(opts);
	vd_err_clear(err);
	int r = vd_iscsi_parse_options(s, opts, &spec, err);
	json_decref(opts);
	return r < 0 ? NULL : spec;
}

static void spec_is(json_t *spec, const char *want)
{
	if (!spec)
		fail_msg("no spec, want %s", want);
	json_t *w = json_loads(want, 0, NULL);
	assert_non_null(w);
	if (!json_equal(spec, w)) {
		char *have = json_dumps(spec, JSON_SORT_KEYS);
		fail_msg("spec %s, want %s", have, want);
	}
	json_decref(w);
	json_decref(spec);
}

static void options_bad(const struct vd_iscsi_settings *s, const char *text, const char *want)
{
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = options(s, text, &err);
	if (spec || err.code != -EINVAL || !strstr(err.msg, want))
		fail_msg("options %s: got '%s', want -EINVAL with '%s'", text, err.msg, want);
}

#define SPEC(backend, size, fstype, wipe, preempt) \
	"{\"backend\":\"" backend "\",\"size\":" size ",\"fstype\":\"" fstype "\",\"wipe\":" \
	wipe ",\"preempt\":" preempt "}"

static void test_options(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	struct vd_iscsi_settings *s = settings_ok(two_backends);

	spec_is(options(s, NULL, &err), SPEC("main", "1073741824", "ext4", "false", "true"));
	spec_is(options(s, "{}", &err), SPEC("main", "1073741824", "ext4", "false", "true"));
	/* Defaults come from the backend (fstype, wipe) and the settings (preempt). */
	spec_is(options(s, "{\"backend\":\"spare\"}", &err),
		SPEC("spare", "1073741824", "xfs", "true", "true"));
	spec_is(options(s, "{\"backend\":\"spare\",\"size\":\"64Mi\",\"fstype\":\"ext4\","
			   "\"wipe\":\"false\",\"preempt\":\"false\"}", &err),
		SPEC("spare", "67108864", "ext4", "false", "false"));
	/* Rounded up to whole MiB; so is the limit, 10G (9537 MiB). */
	spec_is(options(s, "{\"size\":\"16777217\"}", &err),
		SPEC("main", "17825792", "ext4", "false", "true"));
	spec_is(options(s, "{\"size\":\"16Mi\"}", &err),
		SPEC("main", "16777216", "ext4", "false", "true"));
	spec_is(options(s, "{\"size\":\"10G\"}", &err),
		SPEC("main", "10000269312", "ext4", "false", "true"));
	spec_is(options(s, "{\"size\":\"20M\"}", &err),
		SPEC("main", "20971520", "ext4", "false", "true"));
	spec_is(options(s, "{\"backend\":\"spare\",\"size\":\"1Ti\"}", &err),
		SPEC("spare", "1099511627776", "xfs", "true", "true"));

	options_bad(s, "{\"colour\":\"red\"}", "unknown option 'colour' for driver iscsi; "
		    "accepted: backend, size, fstype, wipe, preempt");
	options_bad(s, "[1]", "options for driver iscsi must be a JSON object");
	options_bad(s, "{\"wipe\":true}", "option 'wipe' for driver iscsi must be a string");
	options_bad(s, "{\"backend\":\"nope\"}", "option backend 'nope' is not a configured iscsi "
		    "backend; configured: main, spare");
	options_bad(s, "{\"size\":\"lots\"}", "option size: size 'lots' is not a number");
	options_bad(s, "{\"size\":\"\"}", "option size: size is empty");
	spec_is(options(s, "{\"size\":\"10000269312\"}", &err),
		SPEC("main", "10000269312", "ext4", "false", "true"));
	options_bad(s, "{\"size\":\"16777215\"}", "option size '16777215' is out of range: volumes "
		    "of iscsi backend main are from 16Mi to 10000000000 bytes (its max_volume_size)");
	options_bad(s, "{\"size\":\"10000269313\"}", "option size '10000269313' is out of range");
	options_bad(s, "{\"size\":\"0\"}", "is out of range");
	options_bad(s, "{\"backend\":\"spare\",\"size\":\"9000000Ti\"}", "option size '9000000Ti' is "
		    "out of range: volumes of iscsi backend spare are from 16Mi to 8 EiB");
	options_bad(s, "{\"backend\":\"spare\",\"size\":\"18446744073709551615\"}", "out of range");
	options_bad(s, "{\"fstype\":\"btrfs\"}", "option fstype 'btrfs' is not one of ext4, xfs");
	options_bad(s, "{\"fstype\":\"xfs\",\"size\":\"299Mi\"}", "xfs needs 300Mi or more");
	options_bad(s, "{\"wipe\":\"yes\"}", "option wipe 'yes' must be true or false");
	options_bad(s, "{\"preempt\":\"1\"}", "option preempt '1' must be true or false");
	options_bad(s, "{\"preempt\":\"True\"}", "option preempt 'True' must be true or false");
	vd_iscsi_settings_free(s);

	/* Two backends, no default: backend is required, and the list is given. */
	s = settings_ok("{\"backends\": {\"a\": " TGT("") ", \"b\": " TGT("") "}}");
	options_bad(s, "{}", "option backend is required (no default_backend is configured); "
		    "configured backends: a, b");
	spec_is(options(s, "{\"backend\":\"b\"}", &err),
		SPEC("b", "1073741824", "ext4", "false", "false"));
	vd_iscsi_settings_free(s);

	/* No size and a limit below 1 GiB: the limit (100M is 96 MiB, rounded up). */
	s = settings_ok(B("small", TGT(", \"max_volume_size\": \"100M\"")));
	spec_is(options(s, NULL, &err), SPEC("small", "100663296", "ext4", "false", "false"));
	spec_is(options(s, "{\"size\":\"100M\"}", &err),
		SPEC("small", "100663296", "ext4", "false", "false"));
	vd_iscsi_settings_free(s);

	s = settings_ok(NULL);
	options_bad(s, "{}", "driver iscsi has no backends: drivers.iscsi.backends is empty");
	vd_iscsi_settings_free(s);
	s = settings_ok("{\"backends\": {}}");
	options_bad(s, "{\"backend\":\"x\"}", "drivers.iscsi.backends is empty");
	vd_iscsi_settings_free(s);
	options_bad(NULL, NULL, "drivers.iscsi.backends is empty");
}

static void test_spec_round_trip(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	struct vd_iscsi_settings *s = settings_ok(two_backends);
	const char *cases[] = {
		"{}",
		"{\"backend\":\"spare\",\"size\":\"400000001\",\"fstype\":\"xfs\",\"wipe\":\"true\","
		"\"preempt\":\"false\"}",
		"{\"size\":\"10G\"}",
		"{\"backend\":\"spare\",\"size\":\"7Ti\",\"wipe\":\"false\"}",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *spec = options(s, cases[i], &err);
		struct vd_iscsi_spec sp;
		if (!spec)
			fail_msg("options %s: %s", cases[i], err.msg);
		assert_int_equal(vd_iscsi_spec_read(spec, &sp, &err), 0);
		json_t *opts = vd_iscsi_spec_options(&sp);
		assert_non_null(opts);
		const char *key;
		json_t *value;
		json_object_foreach(opts, key, value)
			assert_true(json_is_string(value));
		json_t *again = NULL;
		assert_int_equal(vd_iscsi_parse_options(s, opts, &again, &err), 0);
		assert_true(json_equal(spec, again));
		json_decref(again);
		json_decref(opts);
		json_decref(spec);
	}
	/* What the fields read back as. */
	json_t *spec = options(s, "{\"backend\":\"spare\",\"size\":\"320Mi\",\"preempt\":\"false\"}",
			       &err);
	struct vd_iscsi_spec sp;
	assert_int_equal(vd_iscsi_spec_read(spec, &sp, &err), 0);
	assert_string_equal(sp.backend, "spare");
	assert_int_equal(sp.size, 320ULL << 20);
	assert_string_equal(sp.fstype, "xfs");
	assert_int_equal(sp.wipe, 1);
	assert_int_equal(sp.preempt, 0);
	json_t *opts = vd_iscsi_spec_options(&sp);
	spec_is(opts, "{\"backend\":\"spare\",\"size\":\"335544320\",\"fstype\":\"xfs\","
		"\"wipe\":\"true\",\"preempt\":\"false\"}");
	json_decref(spec);

	/* A spec read back refuses what parse_options never makes. */
	const char *bad[][2] = {
		{ "[]", "is not a JSON object" },
		{ "{}", "volume spec: backend must be a backend's name" },
		{ SPEC("../a", "16777216", "ext4", "false", "false"), "backend must be" },
		{ "{\"backend\":3,\"size\":16777216,\"fstype\":\"ext4\",\"wipe\":false,"
		  "\"preempt\":false}", "backend must be" },
		{ SPEC("a", "16777215", "ext4", "false", "false"), "volume spec: size must be an "
		  "integer number of bytes, a multiple of 1 MiB, at least 16 MiB" },
		{ SPEC("a", "16777217", "ext4", "false", "false"), "size must be" },
		{ SPEC("a", "-1048576", "ext4", "false", "false"), "size must be" },
		{ SPEC("a", "\"16777216\"", "ext4", "false", "false"), "size must be" },
		{ SPEC("a", "16777216.0", "ext4", "false", "false"), "size must be" },
		{ SPEC("a", "16777216", "ext3", "false", "false"), "volume spec: fstype must be one "
		  "of ext4, xfs" },
		{ "{\"backend\":\"a\",\"size\":16777216,\"wipe\":false,\"preempt\":false}",
		  "fstype must be" },
		{ SPEC("a", "16777216", "ext4", "0", "false"), "volume spec: wipe must be true or "
		  "false" },
		{ "{\"backend\":\"a\",\"size\":16777216,\"fstype\":\"ext4\",\"wipe\":false}",
		  "volume spec: preempt must be true or false" },
		{ "{\"backend\":\"a\",\"size\":16777216,\"fstype\":\"ext4\",\"wipe\":false,"
		  "\"preempt\":false,\"extra\":1}", "volume spec for driver iscsi has unknown key "
		  "'extra'" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *j = json_loads(bad[i][0], 0, NULL);
		assert_non_null(j);
		vd_err_clear(&err);
		if (vd_iscsi_spec_read(j, &sp, &err) != -EINVAL || !strstr(err.msg, bad[i][1]))
			fail_msg("spec %s: got '%s', want '%s'", bad[i][0], err.msg, bad[i][1]);
		json_decref(j);
	}
	assert_int_equal(vd_iscsi_spec_read(NULL, &sp, &err), -EINVAL);
	vd_iscsi_settings_free(s);
}

/* ---- locations and records ---------------------------------------------------- */

#define SPEC_OK SPEC("main", "1073741824", "ext4", "false", "false")
#define LOC_OK "\"portal\":\"10.0.0.5:3260\",\"target\":\"iqn.2026-01.io.volumed:main\",\"lun\":3"

static void location_bad(const char *text, const char *want)
{
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
	struct vd_iscsi_location l;
	struct vd_err err = VD_ERR_INIT;
	assert_non_null(j);
	if (vd_iscsi_location_read(j, &l, &err) != -EINVAL || !strstr(err.msg, want))
		fail_msg("location %s: got '%s', want '%s'", text, err.msg, want);
	json_decref(j);
}

static void test_locations(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	struct vd_iscsi_location l;
	json_t *loc = vd_iscsi_location_new("[::1]:3260", "iqn.2026-01.io.volumed:t", 16383);
	assert_non_null(loc);
	assert_int_equal(json_object_size(loc), 3);
	assert_int_equal(vd_iscsi_location_read(loc, &l, &err), 0);
	assert_string_equal(l.portal, "[::1]:3260");
	assert_string_equal(l.target, "iqn.2026-01.io.volumed:t");
	assert_int_equal(l.lun, 16383);
	json_decref(loc);
	assert_null(vd_iscsi_location_new(NULL, "iqn.2026-01.io.volumed:t", 1));

	location_bad("[]", "iscsi location is not a JSON object");
	location_bad("{\"target\":\"iqn.2026-01.a:b\",\"lun\":1}", "iscsi location: portal must be "
		     "a non-empty string without control characters");
	location_bad("{\"portal\":\"\",\"target\":\"iqn.2026-01.a:b\",\"lun\":1}", "portal must be");
	location_bad("{\"portal\":\"h\\n\",\"target\":\"iqn.2026-01.a:b\",\"lun\":1}",
		     "portal must be");
	location_bad("{\"portal\":\"h\",\"target\":\"iqn.x\",\"lun\":1}", "iscsi location: target "
		     "must be an IQN");
	location_bad("{\"portal\":\"h\",\"lun\":1}", "target must be");
	location_bad("{\"portal\":\"h\",\"target\":\"iqn.2026-01.a:b\",\"lun\":16384}",
		     "iscsi location: lun must be an integer from 0 to 16383");
	location_bad("{\"portal\":\"h\",\"target\":\"iqn.2026-01.a:b\",\"lun\":-1}", "lun must be");
	location_bad("{\"portal\":\"h\",\"target\":\"iqn.2026-01.a:b\",\"lun\":\"1\"}", "lun must be");
	location_bad("{\"portal\":\"h\",\"target\":\"iqn.2026-01.a:b\"}", "lun must be");
}

static void record_bad(const char *text, const char *want)
{
	json_t *rec = NULL;
	struct vd_err err = VD_ERR_INIT;
	int r = vd_iscsi_record_parse(text, strlen(text), &rec, &err);
	if (r != -EINVAL || !strstr(err.msg, want))
		fail_msg("record %s: got %d '%s', want -EINVAL with '%s'", text, r, err.msg, want);
	assert_null(rec);
}

static void test_records(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = json_loads(SPEC_OK, 0, NULL);
	struct vd_iscsi_location loc = { "10.0.0.5:3260", "iqn.2026-01.io.volumed:main", 3 };
	json_t *rec = vd_iscsi_record_new("v1", spec, &loc, "2026-01-02T03:04:05Z");
	assert_non_null(rec);
	assert_int_equal(json_object_size(rec), 6);
	char *text = json_dumps(rec, JSON_COMPACT);
	json_t *back = NULL;
	assert_int_equal(vd_iscsi_record_parse(text, strlen(text), &back, &err), 0);
	assert_true(json_equal(rec, back));
	assert_string_equal(json_string_value(json_object_get(back, "name")), "v1");
	assert_string_equal(json_string_value(json_object_get(back, "created_at")),
			    "2026-01-02T03:04:05Z");
	assert_true(json_equal(json_object_get(back, "spec"), spec));
	struct vd_iscsi_location l;
	assert_int_equal(vd_iscsi_location_read(back, &l, &err), 0);
	assert_string_equal(l.portal, "10.0.0.5:3260");
	assert_string_equal(l.target, "iqn.2026-01.io.volumed:main");
	assert_int_equal(l.lun, 3);
	free(text);
	json_decref(back);
	json_decref(rec);
	json_decref(spec);

	record_bad("", "record is not JSON");
	record_bad("{\"name\":", "record is not JSON");
	record_bad("[]", "record is not a JSON object");
	record_bad("\"v1\"", "record is not JSON");
	record_bad("{\"name\":\"a\",\"name\":\"b\"}", "record is not JSON");   /* duplicate key */
	record_bad("{\"name\":\"v1\",\"spec\":" SPEC_OK "," LOC_OK ",\"created_at\":\"t\",\"x\":1}",
		   "record has unknown key 'x'");
	record_bad("{\"name\":\"v1\",\"options\":{},\"spec\":" SPEC_OK "," LOC_OK ","
		   "\"created_at\":\"t\"}", "record has unknown key 'options'");
	record_bad("{\"spec\":" SPEC_OK "," LOC_OK ",\"created_at\":\"t\"}",
		   "record: name must be a string");
	record_bad("{\"name\":\"../etc\",\"spec\":" SPEC_OK "," LOC_OK ",\"created_at\":\"t\"}",
		   "record: volume name has '.' at position 1");
	record_bad("{\"name\":\"v1\",\"spec\":{}," LOC_OK ",\"created_at\":\"t\"}",
		   "record: volume spec: backend");
	record_bad("{\"name\":\"v1\"," LOC_OK ",\"created_at\":\"t\"}",
		   "record: volume spec for driver iscsi is not a JSON object");
	record_bad("{\"name\":\"v1\",\"spec\":" SPEC_OK ",\"portal\":\"h\",\"target\":\"iqn.2026-01.a:b\","
		   "\"lun\":20000,\"created_at\":\"t\"}", "record: iscsi location: lun must be");
	record_bad("{\"name\":\"v1\",\"spec\":" SPEC_OK ",\"target\":\"iqn.2026-01.a:b\",\"lun\":1,"
		   "\"created_at\":\"t\"}", "record: iscsi location: portal must be");
	record_bad("{\"name\":\"v1\",\"spec\":" SPEC_OK "," LOC_OK "}",
		   "record: created_at must be a non-empty string");
	record_bad("{\"name\":\"v1\",\"spec\":" SPEC_OK "," LOC_OK ",\"created_at\":\"\"}",
		   "record: created_at must be a non-empty string");
	record_bad("{\"name\":\"v1\",\"spec\":" SPEC_OK "," LOC_OK ",\"created_at\":5}",
		   "created_at must be");
	record_bad("{\"name\":\"v\\u0000\",\"spec\":" SPEC_OK "," LOC_OK ",\"created_at\":\"t\"}",
		   "record is not JSON");

	/* The size limit: a padded good record just over it is refused. */
	const char *good = "{\"name\":\"v1\",\"spec\":" SPEC_OK "," LOC_OK ",\"created_at\":\"t\"}";
	char *big = malloc(VD_ISCSI_RECORD_MAX + 2);
	size_t glen = strlen(good);
	memset(big, ' ', VD_ISCSI_RECORD_MAX + 1);
	memcpy(big, good, glen);
	big[VD_ISCSI_RECORD_MAX + 1] = '\0';
	record_bad(big, "record is larger than 65536 bytes");
	big[VD_ISCSI_RECORD_MAX] = '\0';   /* exactly at the limit: fine */
	assert_int_equal(vd_iscsi_record_parse(big, VD_ISCSI_RECORD_MAX, &rec, &err), 0);
	json_decref(rec);
	free(big);
}

/* ---- tgtadm --op show --mode target ------------------------------------------- */

/* Captured from tgtd 1.0 (two initiators logged in to target 1, account
 * u1 bound incoming and u2 outgoing, a backing file with spaces). */
static const char real_show[] =
	"Target 1: iqn.2026-01.io.volumed:t\n"
	"    System information:\n"
	"        Driver: iscsi\n"
	"        State: ready\n"
	"    I_T nexus information:\n"
	"        I_T nexus: 1\n"
	"            Initiator: iqn.2026-01.io.volumed:node-b alias: none\n"
	"            Connection: 0\n"
	"                IP Address: 127.0.0.1\n"
	"        I_T nexus: 2\n"
	"            Initiator: iqn.2026-01.io.volumed:node-a alias: none\n"
	"            Connection: 0\n"
	"                IP Address: 127.0.0.1\n"
	"    LUN information:\n"
	"        LUN: 0\n"
	"            Type: controller\n"
	"            SCSI ID: IET     00010000\n"
	"            SCSI SN: beaf10\n"
	"            Size: 0 MB, Block size: 1\n"
	"            Online: Yes\n"
	"            Removable media: No\n"
	"            Prevent removal: No\n"
	"            Readonly: No\n"
	"            SWP: No\n"
	"            Thin-provisioning: No\n"
	"            Backing store type: null\n"
	"            Backing store path: None\n"
	"            Backing store flags: \n"
	"        LUN: 1\n"
	"            Type: disk\n"
	"            SCSI ID: IET     00010001\n"
	"            SCSI SN: beaf11\n"
	"            Size: 22 MB, Block size: 512\n"
	"            Online: Yes\n"
	"            Removable media: No\n"
	"            Prevent removal: No\n"
	"            Readonly: No\n"
	"            SWP: No\n"
	"            Thin-provisioning: No\n"
	"            Backing store type: rdwr\n"
	"            Backing store path: /tmp/iscsi-meta-cap/f1\n"
	"            Backing store flags: \n"
	"        LUN: 7\n"
	"            Type: disk\n"
	"            SCSI ID: IET     00010007\n"
	"            SCSI SN: beaf17\n"
	"            Size: 5 MB, Block size: 512\n"
	"            Online: Yes\n"
	"            Removable media: No\n"
	"            Prevent removal: No\n"
	"            Readonly: No\n"
	"            SWP: No\n"
	"            Thin-provisioning: No\n"
	"            Backing store type: rdwr\n"
	"            Backing store path: /tmp/iscsi-meta-cap/f 2 with spaces\n"
	"            Backing store flags: \n"
	"    Account information:\n"
	"        u1\n"
	"        u2 (outgoing)\n"
	"    ACL information:\n"
	"        ALL\n"
	"        10.0.0.0/8\n"
	"Target 2: iqn.2026-01.io.volumed:other\n"
	"    System information:\n"
	"        Driver: iscsi\n"
	"        State: ready\n"
	"    I_T nexus information:\n"
	"    LUN information:\n"
	"        LUN: 0\n"
	"            Type: controller\n"
	"            SCSI ID: IET     00020000\n"
	"            SCSI SN: beaf20\n"
	"            Size: 0 MB, Block size: 1\n"
	"            Online: Yes\n"
	"            Removable media: No\n"
	"            Prevent removal: No\n"
	"            Readonly: No\n"
	"            SWP: No\n"
	"            Thin-provisioning: No\n"
	"            Backing store type: null\n"
	"            Backing store path: None\n"
	"            Backing store flags: \n"
	"    Account information:\n"
	"    ACL information:\n"
	"Target 7: iqn.2026-01.io.volumed:big\n"
	"    System information:\n"
	"        Driver: iscsi\n"
	"        State: ready\n"
	"    I_T nexus information:\n"
	"    LUN information:\n"
	"        LUN: 0\n"
	"            Type: controller\n"
	"            SCSI ID: IET     00070000\n"
	"            SCSI SN: beaf70\n"
	"            Size: 0 MB, Block size: 1\n"
	"            Online: Yes\n"
	"            Removable media: No\n"
	"            Prevent removal: No\n"
	"            Readonly: No\n"
	"            SWP: No\n"
	"            Thin-provisioning: No\n"
	"            Backing store type: null\n"
	"            Backing store path: None\n"
	"            Backing store flags: \n"
	"        LUN: 16383\n"
	"            Type: disk\n"
	"            SCSI ID: IET     00073fff\n"
	"            SCSI SN: beaf716383\n"
	"            Size: 3221 MB, Block size: 512\n"
	"            Online: Yes\n"
	"            Removable media: No\n"
	"            Prevent removal: No\n"
	"            Readonly: No\n"
	"            SWP: No\n"
	"            Thin-provisioning: No\n"
	"            Backing store type: rdwr\n"
	"            Backing store path: /tmp/iscsi-meta-cap/big\n"
	"            Backing store flags: \n"
	"    Account information:\n"
	"    ACL information:\n"
;

static struct vd_tgt_show show_ok(const char *text, size_t len)
{
	struct vd_tgt_show show = { 0 };
	struct vd_err err = VD_ERR_INIT;
	if (vd_tgt_show_parse(text, len, &show, &err) < 0)
		fail_msg("tgtadm output refused: %s", err.msg);
	return show;
}

static void show_bad(const char *text, size_t len, const char *want)
{
	struct vd_tgt_show show = { (struct vd_tgt_target *)&show, 99 };
	struct vd_err err = VD_ERR_INIT;
	int r = vd_tgt_show_parse(text, len, &show, &err);
	if (r != -EINVAL || !strstr(err.msg, want))
		fail_msg("tgtadm output %.60s: got %d '%s', want -EINVAL with '%s'", text, r,
			 err.msg, want);
	assert_int_equal(show.count, 99);   /* untouched on failure */
}

static void test_tgt_show_real(void **state)
{
	(void)state;
	struct vd_tgt_show show = show_ok(real_show, strlen(real_show));
	assert_int_equal(show.count, 3);

	const struct vd_tgt_target *t = vd_tgt_show_find(&show, 1);
	assert_ptr_equal(t, &show.targets[0]);
	assert_string_equal(t->iqn, "iqn.2026-01.io.volumed:t");
	assert_int_equal(t->nexus_count, 2);
	assert_int_equal(t->lun_count, 3);
	assert_int_equal(t->luns[0].lun, 0);
	assert_null(t->luns[0].backing);
	assert_int_equal(t->luns[0].size, 0);
	assert_int_equal(t->luns[1].lun, 1);
	assert_string_equal(t->luns[1].backing, "/tmp/iscsi-meta-cap/f1");
	assert_int_equal(t->luns[1].size, 22000000);
	assert_int_equal(t->luns[2].lun, 7);
	assert_string_equal(t->luns[2].backing, "/tmp/iscsi-meta-cap/f 2 with spaces");
	assert_int_equal(t->luns[2].size, 5000000);
	assert_int_equal(t->account_count, 1);
	assert_string_equal(t->accounts[0], "u1");
	assert_int_equal(t->outgoing_count, 1);
	assert_string_equal(t->outgoing[0], "u2");
	assert_int_equal(t->acl_count, 2);
	assert_string_equal(t->acls[0], "ALL");
	assert_string_equal(t->acls[1], "10.0.0.0/8");

	t = vd_tgt_show_find(&show, 2);
	assert_string_equal(t->iqn, "iqn.2026-01.io.volumed:other");
	assert_int_equal(t->lun_count, 1);
	assert_int_equal(t->account_count, 0);
	assert_null(t->accounts);
	assert_int_equal(t->outgoing_count, 0);
	assert_int_equal(t->acl_count, 0);
	assert_int_equal(t->nexus_count, 0);

	t = vd_tgt_show_find(&show, 7);
	assert_string_equal(t->iqn, "iqn.2026-01.io.volumed:big");
	assert_int_equal(t->lun_count, 2);
	assert_int_equal(t->luns[1].lun, 16383);
	assert_int_equal(t->luns[1].size, 3221000000ULL);
	assert_string_equal(t->luns[1].backing, "/tmp/iscsi-meta-cap/big");
	assert_null(vd_tgt_show_find(&show, 3));
	assert_null(vd_tgt_show_find(NULL, 1));
	vd_tgt_show_clear(&show);
	assert_null(show.targets);
	assert_int_equal(show.count, 0);
	vd_tgt_show_clear(&show);   /* twice: harmless */
	vd_tgt_show_clear(NULL);

	/* The last line without its newline; empty output: no targets. */
	show = show_ok(real_show, strlen(real_show) - 1);
	assert_int_equal(show.count, 3);
	vd_tgt_show_clear(&show);
	const char *no_newline = "Target 4: iqn.2026-01.a:b\n    ACL information:\n        ALL";
	show = show_ok(no_newline, strlen(no_newline));
	assert_int_equal(show.count, 1);
	assert_int_equal(show.targets[0].acl_count, 1);
	assert_string_equal(show.targets[0].acls[0], "ALL");
	vd_tgt_show_clear(&show);
	show = show_ok("", 0);
	assert_int_equal(show.count, 0);
	assert_null(show.targets);
	show = show_ok(NULL, 0);
	assert_int_equal(show.count, 0);
}

static void test_tgt_show_lenient(void **state)
{
	(void)state;
	/* Unknown sections and lines are skipped; names that are not IQNs
	 * are kept as tgt prints them; blank lines are fine. */
	const char *text =
		"\n"
		"Target 3: eui.02004567A425678D\n"
		"    Future information:\n"
		"        LUN: banana\n"
		"        Anything: at all\n"
		"    LUN information:\n"
		"            Backing store path: /orphan\n"
		"        Something new: 1\n"
		"        LUN: 2\n"
		"            Size: huge MB, Block size: 512\n"
		"            Size: 99999999999999999999 MB, Block size: 512\n"
		"            Backing store path: \n"
		"          odd indent\n"
		"                Deeper: detail\n"
		"    I_T nexus information:\n"
		"        I_T nexus: 9\n"
		"            Initiator: x\n"
		"        Not a nexus\n"
		"    Account information:\n"
		"        (outgoing)\n"
		"        a b (outgoing)\n"
		"   \n"
		"\n";
	struct vd_tgt_show show = show_ok(text, strlen(text));
	assert_int_equal(show.count, 1);
	const struct vd_tgt_target *t = &show.targets[0];
	assert_int_equal(t->tid, 3);
	assert_string_equal(t->iqn, "eui.02004567A425678D");
	assert_int_equal(t->lun_count, 1);
	assert_int_equal(t->luns[0].lun, 2);
	assert_int_equal(t->luns[0].size, 0);
	assert_null(t->luns[0].backing);
	assert_int_equal(t->nexus_count, 1);
	assert_int_equal(t->account_count, 1);
	assert_string_equal(t->accounts[0], "(outgoing)");
	assert_int_equal(t->outgoing_count, 1);
	assert_string_equal(t->outgoing[0], "a b");
	vd_tgt_show_clear(&show);

	/* A path given twice: the last one. */
	text = "Target 1: iqn.2026-01.a:b\n    LUN information:\n        LUN: 1\n"
	       "            Backing store path: /a\n            Backing store path: /b c \n";
	show = show_ok(text, strlen(text));
	assert_string_equal(show.targets[0].luns[0].backing, "/b c ");
	vd_tgt_show_clear(&show);
}

static void test_tgt_show_errors(void **state)
{
	(void)state;
	show_bad("    System information:\n", 24, "tgtadm output line 1: expected 'Target N: IQN' "
		 "first, got 'System information:'");
	show_bad("\n\nhello\n", 8, "tgtadm output line 3: expected 'Target N: IQN', got 'hello'");
	show_bad("Target x: iqn.2026-01.a:b\n", 26, "line 1: expected 'Target N: IQN'");
	show_bad("Target 0: iqn.2026-01.a:b\n", 26, "expected 'Target N: IQN'");
	show_bad("Target 1: \n", 11, "expected 'Target N: IQN'");
	show_bad("Target 1:\n", 10, "expected 'Target N: IQN'");
	show_bad("Target 1:iqn\n", 13, "expected 'Target N: IQN'");
	show_bad("Target : iqn\n", 13, "expected 'Target N: IQN'");
	show_bad("Target 99999999999: iqn\n", 24, "expected 'Target N: IQN'");
	show_bad("Target -1: iqn\n", 15, "expected 'Target N: IQN'");
	show_bad("Target 1: iqn.2026-01.a:b\n    LUN information:\n        LUN: x\n", 62,
		 "tgtadm output line 3: expected 'LUN: N', got 'LUN: x'");
	show_bad("Target 1: iqn.2026-01.a:b\n    LUN information:\n        LUN: 3000000000\n", 71,
		 "expected 'LUN: N'");
	show_bad("Target 1: a\0b\n", 14, "tgtadm output line 1 has a NUL byte");
	show_bad("Target 1: a\nTarget 2: b\n\tLUN: 1\n", 32, "line 3: expected 'Target N: IQN', "
		 "got '\tLUN: 1'");
}

/* Builds n copies of line after head, into a malloc'd buffer. */
static char *repeat(const char *head, const char *line, size_t n, size_t *ret_len)
{
	size_t hl = strlen(head), ll = strlen(line);
	char *buf = malloc(hl + ll * n + 1);
	assert_non_null(buf);
	memcpy(buf, head, hl);
	for (size_t i = 0; i < n; i++)
		memcpy(buf + hl + i * ll, line, ll);
	buf[hl + ll * n] = '\0';
	*ret_len = hl + ll * n;
	return buf;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Large inputs: bounded counts, linear time, lines of any length. */
static void test_tgt_show_limits(void **state)
{
	(void)state;
	const char *head = "Target 1: iqn.2026-01.a:b\n    LUN information:\n";
	struct timespec t0;
	size_t len;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char *text = repeat(head, "        LUN: 5\n            Backing store path: /p\n", 65536, &len);
	struct vd_tgt_show show = show_ok(text, len);
	assert_int_equal(show.targets[0].lun_count, 65536);
	assert_string_equal(show.targets[0].luns[65535].backing, "/p");
	vd_tgt_show_clear(&show);
	free(text);
	text = repeat(head, "        LUN: 5\n", 65537, &len);
	show_bad(text, len, "more than 65536 LUNs in a target");
	free(text);

	text = repeat("Target 1: iqn.2026-01.a:b\n    ACL information:\n", "        ALL\n", 65537,
		      &len);
	show_bad(text, len, "more than 65536 entries in a target's list");
	free(text);
	text = repeat("Target 1: iqn.2026-01.a:b\n    I_T nexus information:\n",
		      "        I_T nexus: 1\n", 65537, &len);
	show_bad(text, len, "more than 65536 sessions in a target");
	free(text);

	text = repeat("", "Target 1: iqn.2026-01.a:b\n", 4096, &len);
	show = show_ok(text, len);
	assert_int_equal(show.count, 4096);
	assert_ptr_equal(vd_tgt_show_find(&show, 1), &show.targets[0]);   /* the first */
	vd_tgt_show_clear(&show);
	free(text);
	text = repeat("", "Target 1: iqn.2026-01.a:b\n", 4097, &len);
	show_bad(text, len, "tgtadm output line 4097: more than 4096 targets");
	free(text);

	/* One 4 MiB line, and 4 MiB of skipped detail. */
	text = repeat("Target 1: iqn.2026-01.a:b\n    LUN information:\n        LUN: 1\n"
		      "            Backing store path: ", "x", 4 << 20, &len);
	show = show_ok(text, len);
	assert_int_equal(strlen(show.targets[0].luns[0].backing), 4 << 20);
	vd_tgt_show_clear(&show);
	free(text);
	text = repeat(head, "                x\n", 1 << 18, &len);
	show = show_ok(text, len);
	vd_tgt_show_clear(&show);
	free(text);
	assert_true(seconds_since(&t0) < 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings_defaults),
		cmocka_unit_test(test_settings_full),
		cmocka_unit_test(test_settings_errors),
		cmocka_unit_test(test_settings_chap_secrets),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_iqn),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_spec_round_trip),
		cmocka_unit_test(test_locations),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_tgt_show_real),
		cmocka_unit_test(test_tgt_show_lenient),
		cmocka_unit_test(test_tgt_show_errors),
		cmocka_unit_test(test_tgt_show_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
