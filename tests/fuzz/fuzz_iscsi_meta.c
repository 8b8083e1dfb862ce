/* fuzz_iscsi_meta.c — the iscsi driver's records (what it reads back from
 * pool directories and state files), volume options and settings on
 * arbitrary bytes. A record accepted must rebuild and reparse to an equal
 * JSON, and its spec must give options that give the spec again; options
 * accepted give a spec that reads back and round-trips; settings accepted
 * keep their invariants (canonical portals stay canonical), and settings
 * refused never show a CHAP password in the message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../drivers/iscsi_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Marks a CHAP password in a seed; no error message has this text. */
#define MARK "SECRET"

static struct vd_iscsi_settings *settings_from(json_t *j)
{
	struct vd_iscsi_settings *s = NULL;
	struct vd_err err = VD_ERR_INIT;
	if (vd_iscsi_settings_parse(j, &s, &err) < 0)
		return NULL;
	return s;
}

/* spec -> options -> spec again, with settings having backend b. */
static void spec_round_trip(const struct vd_iscsi_settings *s, const json_t *spec)
{
	struct vd_err err = VD_ERR_INIT;
	struct vd_iscsi_spec sp;
	json_t *again = NULL;
	if (vd_iscsi_spec_read(spec, &sp, &err) < 0)
		abort();
	json_t *opts = vd_iscsi_spec_options(&sp);
	if (!opts)
		return;
	if (vd_iscsi_parse_options(s, opts, &again, &err) < 0 || !json_equal(spec, again))
		abort();
	json_decref(again);
	json_decref(opts);
}

/* A settings object with one tgt backend called name. */
static struct vd_iscsi_settings *one_backend(const char *name, const char *portal)
{
	json_t *j = json_pack("{s:{s:{s:s,s:s}}}", "backends", name, "provisioner", "tgt",
			      "portal", portal);
	struct vd_iscsi_settings *s = j ? settings_from(j) : NULL;
	json_decref(j);
	return s;
}

static void check_record(const uint8_t *data, size_t size)
{
	struct vd_err err = VD_ERR_INIT;
	struct vd_iscsi_location loc;
	json_t *rec = NULL, *back = NULL;
	if (vd_iscsi_record_parse((const char *)data, size, &rec, &err) < 0)
		return;
	const char *name = json_string_value(json_object_get(rec, "name"));
	const char *created = json_string_value(json_object_get(rec, "created_at"));
	json_t *spec = json_object_get(rec, "spec");
	if (!name || !created || vd_iscsi_location_read(rec, &loc, &err) < 0)
		abort();
	json_t *again = vd_iscsi_record_new(name, spec, &loc, created);
	char *text = again ? json_dumps(again, JSON_COMPACT) : NULL;
	if (again && !json_equal(rec, again))
		abort();
	if (text && (vd_iscsi_record_parse(text, strlen(text), &back, &err) < 0 ||
		     !json_equal(again, back)))
		abort();
	struct vd_iscsi_settings *s = one_backend(json_string_value(json_object_get(spec,
									      "backend")), "h");
	if (!s)
		abort();   /* a spec's backend name is one settings accept */
	spec_round_trip(s, spec);
	vd_iscsi_settings_free(s);
	json_decref(back);
	free(text);
	json_decref(again);
	json_decref(rec);
}

static const char options_settings[] =
	"{\"backends\": {"
	"\"main\": {\"provisioner\": \"tgt\", \"portal\": \"h\", \"max_volume_size\": \"10G\"},"
	"\"spare\": {\"provisioner\": \"static\", \"portal\": \"h\", \"fstype\": \"xfs\","
	" \"wipe\": true, \"max_volume_size\": 16777217}},"
	" \"default_backend\": \"main\"}";

static void check_options(json_t *opts)
{
	struct vd_err err = VD_ERR_INIT;
	json_t *j = json_loads(options_settings, 0, NULL);
	struct vd_iscsi_settings *s = j ? settings_from(j) : NULL;
	json_t *spec = NULL;
	if (j && !s)
		abort();
	if (s && vd_iscsi_parse_options(s, opts, &spec, &err) == 0)
		spec_round_trip(s, spec);
	json_decref(spec);
	vd_iscsi_settings_free(s);
	json_decref(j);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* 1 when a CHAP password in settings j holds MARK. */
static int marked_password(json_t *j)
{
	const char *name;
	json_t *b;
	json_object_foreach(json_object_get(j, "backends"), name, b) {
		json_t *chap = json_object_get(b, "chap");
		const char *p = json_string_value(json_object_get(chap, "password"));
		const char *tp = json_string_value(json_object_get(chap, "target_password"));
		if ((p && strstr(p, MARK)) || (tp && strstr(tp, MARK)))
			return 1;
	}
	return 0;
}

static void check_backend(const struct vd_iscsi_settings *s, const struct vd_iscsi_backend *b)
{
	if (!b->name || !b->portal || !b->fstype || b->timeout_ms < VD_ISCSI_TIMEOUT_MIN ||
	    (b->provisioner == VD_ISCSI_TGT && (!vd_iscsi_iqn_valid(b->target) || !b->tgtadm)) ||
	    vd_iscsi_backend_find(s, b->name) != b || (b->chap.username && !b->chap.password))
		abort();
	/* The canonical portal reads back as itself. */
	struct vd_iscsi_settings *again = one_backend(b->name, b->portal);
	if (!again || strcmp(again->backends[0].portal, b->portal) != 0)
		abort();
	vd_iscsi_settings_free(again);
}

static void check_settings(json_t *j)
{
	struct vd_iscsi_settings *s = NULL;
	struct vd_err err = VD_ERR_INIT;
	if (vd_iscsi_settings_parse(j, &s, &err) == 0) {
		if (s->default_backend && (s->default_backend < s->backends ||
					   s->default_backend >= s->backends + s->count))
			abort();
		for (size_t i = 0; i < s->count; i++)
			check_backend(s, &s->backends[i]);
		vd_iscsi_settings_free(s);
		return;
	}
	/* The only MARK in the input is in a password: the message lacks it. */
	char *text = json_dumps(j, JSON_COMPACT);
	if (text && count(text, MARK) == 1 && marked_password(j) && strstr(err.msg, MARK))
		abort();
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_record(data, size);
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	if (json_is_object(j)) {
		check_options(j);
		check_settings(j);
	}
	json_decref(j);
	return 0;
}
