/* core.c — the controller and the node agent wired together in one
 * process, and the views the front-ends show (see core.h).
 *
 * Threads: stateless beyond the parts it owns; their own locks apply. */
#include "core.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <time.h>

#include "../drivers/helper_proc.h"
#include "agent.h"
#include "backends.h"
#include "catalog.h"
#include "docset.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "node.h"
#include "nodes.h"
#include "remote.h"
#include "snapshots.h"

#define LEASE_MS_DEFAULT 10000
#define MOVE_WAIT_MS_DEFAULT 30000

/* A controller (catalog, snapshots, nodes registry) or a node agent of a
 * remote one (remote); a node agent either way (node, agent). */
struct vd_core {
	char *state_dir;
	char *default_driver;
	time_t started;
	struct vd_backends *backends;
	struct vd_catalog *catalog;
	struct vd_snapshots *snapshots;
	struct vd_nodes *nodes;
	struct vd_remote *remote;
	struct vd_controller ctl;       /* catalog's, or remote's */
	struct vd_node *node;
	struct vd_agent *agent;
	int move_wait_ms, lease_ms;
};

static int local_heartbeat(void *link, const char *node_id, const json_t *report,
			   json_t **ret_requests, struct vd_err *err)
{
	return vd_nodes_heartbeat(link, node_id, report, ret_requests, err);
}

static int controller_open(struct vd_core *core, const struct vd_core_config *cfg,
			   struct vd_err *err)
{
	int r = vd_catalog_open(cfg->state_dir, core->backends, &core->catalog, err);
	if (r == 0)
		r = vd_snapshots_open(cfg->state_dir, core->backends, core->catalog,
				      &core->snapshots, err);
	if (r == 0)
		r = vd_nodes_open(cfg->state_dir, core->lease_ms, &core->nodes, err);
	if (r < 0)
		return r;
	vd_catalog_cluster(core->catalog, core->nodes, cfg->node_id, core->move_wait_ms,
			   cfg->preempt);
	core->ctl = vd_catalog_controller(core->catalog);
	return 0;
}

/* Node, then its agent: heartbeats to the controller, in-process or not.
 * A node agent first renews its lease, which the data paths of its
 * single-writer volumes follow (an unreachable controller: they wait). */
static int node_start(struct vd_core *core, const struct vd_core_config *cfg, struct vd_err *err)
{
	char lease[PATH_MAX];
	const char *lease_file = NULL;
	json_t *requests = NULL;
	struct vd_agent_link link = core->remote ? vd_remote_link(core->remote)
		: (struct vd_agent_link){ .heartbeat = local_heartbeat, .link = core->nodes };
	if (core->remote) {
		struct vd_err e = VD_ERR_INIT;
		snprintf(lease, sizeof(lease), "%s/lease", cfg->state_dir);
		lease_file = lease;
		if (vd_agent_first_contact(link, cfg->node_id, core->lease_ms, lease_file, &requests,
					   &e) < 0)
			vd_log(VD_LOG_WARN, "node: no lease from the controller yet (%s); single-writer "
			       "volumes wait for it", vd_err_msg(&e));
	}
	int r = vd_node_open(cfg->state_dir, cfg->node_id, lease_file, core->backends, core->ctl,
			     &core->node, err);
	if (r == 0)
		r = vd_agent_start(core->node, link, core->lease_ms, lease_file, requests,
				   &core->agent, err);
	json_decref(requests);
	return r;
}

/* mkdir -p, the last component private to root. */
static int state_dir_make(const char *dir, struct vd_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			break;
		*p = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return vd_err_set(err, -errno, "cannot create state directory %s: %s", dir,
				  strerror(errno));
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return vd_err_set(err, -ENOTDIR, "state directory %s is not a directory", dir);
	return 0;
}

int vd_core_open(const struct vd_core_config *cfg, struct vd_core **ret_core,
		 struct vd_err *err)
{
	struct vd_core *core = calloc(1, sizeof(*core));
	if (!core)
		return vd_err_set(err, -ENOMEM, "out of memory");
	core->started = time(NULL);
	core->state_dir = strdup(cfg->state_dir);
	core->default_driver = strdup(cfg->default_driver ? cfg->default_driver : "local");
	int r = -ENOMEM;
	if (!core->state_dir || !core->default_driver) {
		vd_err_set(err, r, "out of memory");
		goto fail;
	}
	core->lease_ms = cfg->lease_ms > 0 ? cfg->lease_ms : LEASE_MS_DEFAULT;
	core->move_wait_ms = cfg->move_wait_ms >= 0 ? cfg->move_wait_ms : MOVE_WAIT_MS_DEFAULT;
	int agent = cfg->controller_url && *cfg->controller_url;
	if ((r = state_dir_make(cfg->state_dir, err)) < 0 ||
	    (r = vd_backends_open(cfg->state_dir, cfg->node_id, agent, cfg->drivers,
				       &core->backends, err)) < 0 ||
	    (r = vd_backend_get(core->backends, core->default_driver, &(const struct vd_backend *){ NULL },
				err)) < 0)
		goto fail;
	if (agent) {
		/* a request never waits longer than a move may, plus slack */
		r = vd_remote_open(cfg->controller_url, cfg->token, cfg->ca_file,
				   core->move_wait_ms + 10000L, core->lease_ms / 4 + 1, &core->remote,
				   err);
		if (r == 0)
			core->ctl = vd_remote_controller(core->remote);
	} else {
		r = controller_open(core, cfg, err);
	}
	if (r == 0)
		r = node_start(core, cfg, err);
	if (r < 0)
		goto fail;
	*ret_core = core;
	return 0;
fail:
	vd_core_free(core);
	return r;
}

void vd_core_free(struct vd_core *core)
{
	if (!core)
		return;
	vd_agent_stop(core->agent);
	vd_node_free(core->node);
	vd_snapshots_free(core->snapshots);
	vd_catalog_free(core->catalog);
	vd_nodes_free(core->nodes);
	vd_remote_free(core->remote);
	vd_backends_free(core->backends);
	free(core->default_driver);
	free(core->state_dir);
	free(core);
}

/* The "driver" option chooses the driver (Docker's -o driver=nfs, CSI's
 * StorageClass parameter); the driver itself never sees it. ret_opts is a
 * new reference without it. */
static int driver_option(const json_t *opts, const char **driver, json_t **ret_opts,
			 struct vd_err *err)
{
	if (opts && !json_is_object(opts))
		return vd_err_set(err, -EINVAL, "options must be an object of strings");
	json_t *chosen = json_object_get(opts, "driver");
	if (!chosen) {
		*ret_opts = json_incref((json_t *)opts);
		return 0;
	}
	if (!json_is_string(chosen))
		return vd_err_set(err, -EINVAL, "option driver must be a string; available: %s",
				  vd_driver_names());
	if (*driver && strcmp(*driver, json_string_value(chosen)) != 0)
		return vd_err_set(err, -EINVAL, "option driver=%s contradicts driver %s",
				  json_string_value(chosen), *driver);
	json_t *rest = json_copy((json_t *)opts);
	if (!rest)
		return vd_err_set(err, -ENOMEM, "out of memory");
	*driver = json_string_value(chosen);
	json_object_del(rest, "driver");
	*ret_opts = rest;
	return 0;
}

/* The catalog's documents: the controller's own, or asked of it. */
static int doc_get(struct vd_core *core, const char *name, json_t **ret_doc, struct vd_err *err)
{
	return core->remote ? vd_remote_document(core->remote, name, ret_doc, err)
		: vd_catalog_get(core->catalog, name, ret_doc, err);
}

static int docs_list(struct vd_core *core, json_t **ret_docs, struct vd_err *err)
{
	return core->remote ? vd_remote_documents(core->remote, ret_docs, err)
		: vd_catalog_list(core->catalog, ret_docs, err);
}

static int controller_only(const struct vd_core *core, const char *what, struct vd_err *err)
{
	if (!core->remote)
		return 0;
	return vd_err_set(err, -EOPNOTSUPP, "%s is done by the controller; this volumed is a "
			  "node agent (volctl --url CONTROLLER ...)", what);
}

/* A node agent creates through the controller; a node-local volume (a
 * directory or image on this node) is then provisioned here, its home. */
static int remote_create(struct vd_core *core, const char *name, const char *driver,
			 const json_t *opts, struct vd_err *err)
{
	const struct vd_backend *b;
	json_t *spec = NULL, *data = NULL;
	int r = vd_backend_get(core->backends, driver, &b, err);
	if (r == 0 && b->ops->node_local)
		r = b->ops->parse_options(b->priv, opts, &spec, err);
	if (r == 0)
		r = vd_remote_create(core->remote, name, driver, opts,
				     b->ops->node_local ? vd_node_id(core->node) : NULL, err);
	if (r == 0 && b->ops->node_local && (r = b->ops->create(b->priv, name, spec, &data, err)) < 0) {
		struct vd_err ignored = VD_ERR_INIT;
		vd_remote_remove(core->remote, name, &ignored);
	}
	json_decref(data);
	json_decref(spec);
	return r;
}

int vd_core_create(struct vd_core *core, const char *name, const char *driver,
		   const json_t *opts, struct vd_err *err)
{
	return vd_core_create_from(core, name, driver, opts, NULL, NULL, err);
}

int vd_core_create_from(struct vd_core *core, const char *name, const char *driver,
			const json_t *opts, const char *snapshot, const char *volume,
			struct vd_err *err)
{
	struct vd_source src = { snapshot, volume };
	json_t *snap = NULL, *rest = NULL;
	int r = driver_option(opts, &driver, &rest, err);
	if (r == 0 && core->remote) {
		r = snapshot || volume ? controller_only(core, "creating from a snapshot or volume", err)
			: remote_create(core, name, driver ? driver : core->default_driver, rest, err);
		json_decref(rest);
		return r;
	}
	if (r == 0 && snapshot)
		r = vd_snapshots_get(core->snapshots, snapshot, &snap, err);
	/* A snapshot's content can only go into a volume of its own driver. */
	if (r == 0 && snap && !driver)
		driver = vd_doc_str(snap, "driver");
	if (r == 0)
		r = vd_catalog_create_from(core->catalog, name,
					   driver ? driver : core->default_driver, rest,
					   snapshot || volume ? &src : NULL, err);
	json_decref(snap);
	json_decref(rest);
	return r;
}

/* A node-local volume is removed from the catalog, then from its home. */
static int remote_remove(struct vd_core *core, const char *name, struct vd_err *err)
{
	json_t *doc;
	const struct vd_backend *b = NULL;
	int r = doc_get(core, name, &doc, err);
	if (r < 0)
		return r;
	const char *home = json_string_value(json_object_get(doc, "home"));
	b = vd_backend_find(core->backends, vd_doc_str(doc, "driver"));
	if (home && strcmp(home, vd_node_id(core->node)) != 0)
		r = vd_err_set(err, -EINVAL, "volume %s lives on node %s; remove it there", name, home);
	if (r == 0)
		r = vd_remote_remove(core->remote, name, err);
	if (r == 0 && home && b)
		r = b->ops->remove(b->priv, name, json_object_get(doc, "spec"),
				   json_object_get(doc, "data"), err);
	json_decref(doc);
	return r;
}

int vd_core_remove(struct vd_core *core, const char *name, struct vd_err *err)
{
	if (core->remote)
		return remote_remove(core, name, err);
	return vd_catalog_remove(core->catalog, name, err);
}

/* Docker shares a network volume between nodes; a local one stays put. */
int vd_core_mount(struct vd_core *core, const char *name, const char *mount_id,
		  char **ret_path, struct vd_err *err)
{
	struct vd_mount_opts o = { .access = VD_ACCESS_SINGLE };
	json_t *doc = NULL;
	if (doc_get(core, name, &doc, NULL) == 0) {
		const struct vd_backend *b = vd_backend_find(core->backends,
							     vd_doc_str(doc, "driver"));
		if (b && b->ops->multi_node)
			o.access = VD_ACCESS_MULTI;
		json_decref(doc);
	}
	return vd_node_mount(core->node, name, mount_id, &o, ret_path, err);
}

int vd_core_mount_ex(struct vd_core *core, const char *name, const char *mount_id,
		     const struct vd_mount_opts *opts, char **ret_path, struct vd_err *err)
{
	return vd_node_mount(core->node, name, mount_id, opts, ret_path, err);
}

int vd_core_driver_node_local(const struct vd_core *core, const char *driver)
{
	const struct vd_backend *b = vd_backend_find(core->backends,
						     driver ? driver : core->default_driver);
	return b && b->ops->node_local;
}

const char *vd_core_node_id(const struct vd_core *core)
{
	return vd_node_id(core->node);
}

/* This node, or (on the controller) any node that registered. */
int vd_core_node_known(const struct vd_core *core, const char *node_id)
{
	if (!node_id)
		return 0;
	return strcmp(node_id, vd_node_id(core->node)) == 0 ||
	       (core->nodes && vd_nodes_known(core->nodes, node_id));
}

static int node_check(const struct vd_core *core, const char *node_id, struct vd_err *err)
{
	if (vd_core_node_known(core, node_id))
		return 0;
	return vd_err_set(err, -ENOENT, "unknown node '%.255s'; known: %s", node_id ? node_id : "",
			  vd_node_id(core->node));
}

int vd_core_publish(struct vd_core *core, const char *name, const char *node_id,
		    enum vd_access access, struct vd_err *err)
{
	struct vd_controller ctl = core->ctl;
	json_t *doc = NULL;
	int r = node_check(core, node_id, err);
	if (r == 0 && (r = vd_name_check(name, err)) == 0)
		r = ctl.ops->attach(ctl.ctl, name, node_id, access, 0, &doc, err);
	json_decref(doc);
	return r;
}

int vd_core_unpublish(struct vd_core *core, const char *name, const char *node_id,
		      struct vd_err *err)
{
	struct vd_controller ctl = core->ctl;
	int r = node_check(core, node_id, err);
	if (r < 0 || (r = vd_name_check(name, err)) < 0)
		return r;
	json_t *record = vd_node_record(core->node, name);
	size_t refs = json_array_size(json_object_get(record, "mount_ids"));
	json_decref(record);
	if (refs)
		return vd_err_set(err, -EBUSY, "volume %s is still mounted on node %s (%zu "
				  "references); unmount it there first", name, node_id, refs);
	return ctl.ops->detach(ctl.ctl, name, node_id, err);
}

int vd_core_expand(struct vd_core *core, const char *name, uint64_t new_size,
		   uint64_t *ret_size, int *ret_node_pending, struct vd_err *err)
{
	*ret_node_pending = 0;
	int r = controller_only(core, "expanding a volume", err);
	return r < 0 ? r : vd_catalog_expand(core->catalog, name, new_size, ret_size,
					     ret_node_pending, err);
}

int vd_core_node_expand(struct vd_core *core, const char *name, struct vd_err *err)
{
	json_t *doc;
	const struct vd_backend *b;
	int r = doc_get(core, name, &doc, err);
	if (r < 0)
		return r;
	r = vd_backend_get(core->backends, vd_doc_str(doc, "driver"), &b, err);
	if (r == 0 && !b->ops->node_expand)
		r = vd_err_set(err, -EOPNOTSUPP, "driver %s cannot expand volumes", b->ops->name);
	if (r == 0)
		r = b->ops->node_expand(b->priv, name, json_object_get(doc, "spec"),
					json_object_get(doc, "data"), err);
	json_decref(doc);
	return r;
}

int vd_core_snapshot_create(struct vd_core *core, const char *name, const char *source,
			    json_t **ret_snapshot, struct vd_err *err)
{
	int r = controller_only(core, "snapshots", err);
	return r < 0 ? r : vd_snapshots_create(core->snapshots, name, source, ret_snapshot, err);
}

int vd_core_snapshot_delete(struct vd_core *core, const char *name, struct vd_err *err)
{
	int r = controller_only(core, "snapshots", err);
	return r < 0 ? r : vd_snapshots_delete(core->snapshots, name, err);
}

int vd_core_snapshot_get(struct vd_core *core, const char *name, json_t **ret_snapshot,
			 struct vd_err *err)
{
	int r = controller_only(core, "snapshots", err);
	return r < 0 ? r : vd_snapshots_get(core->snapshots, name, ret_snapshot, err);
}

int vd_core_snapshot_list(struct vd_core *core, json_t **ret_snapshots, struct vd_err *err)
{
	if (core->remote) {
		*ret_snapshots = json_array();
		return 0;
	}
	return vd_snapshots_list(core->snapshots, ret_snapshots, err);
}

int vd_core_capacity(struct vd_core *core, const char *driver, const json_t *opts,
		     uint64_t *ret_bytes, struct vd_err *err)
{
	const struct vd_backend *b;
	int r = vd_backend_get(core->backends, driver ? driver : core->default_driver, &b, err);
	if (r == 0 && !b->ops->capacity)
		r = vd_err_set(err, -EOPNOTSUPP, "driver %s does not report capacity", b->ops->name);
	return r < 0 ? r : b->ops->capacity(b->priv, opts, ret_bytes, err);
}

int vd_core_unmount(struct vd_core *core, const char *name, const char *mount_id,
		    struct vd_err *err)
{
	return vd_node_unmount(core->node, name, mount_id, err);
}

/* The status object: driver fields, then this node's mount state. */
static json_t *view_status(struct vd_core *core, const struct vd_backend *b,
			   const json_t *doc, const json_t *record)
{
	json_t *ids = record ? json_object_get(record, "mount_ids") : NULL;
	json_t *status = json_pack("{s:s}", "driver", b->ops->name);
	if (!status)
		return NULL;
	if (b->ops->describe)
		b->ops->describe(b->priv, json_object_get(doc, "spec"), json_object_get(doc, "data"),
				 status);
	json_object_set_new(status, "mounted", json_boolean(json_array_size(ids) > 0));
	json_object_set_new(status, "refs", json_integer((json_int_t)json_array_size(ids)));
	json_object_set_new(status, "mount_ids", ids ? json_copy(ids) : json_array());
	json_object_set_new(status, "attachments",
			    json_copy(json_object_get(doc, "attachments")));
	json_object_set_new(status, "node", json_string(vd_node_id(core->node)));
	return status;
}

/* Where the volume is mounted here, or where the driver would mount it. */
static char *volume_mountpoint(const struct vd_backend *b, const json_t *doc,
			       const json_t *record)
{
	if (record)
		return strdup(vd_doc_str(record, "path"));
	return b->ops->mountpoint(b->priv, vd_doc_str(doc, "name"), json_object_get(doc, "spec"),
				  json_object_get(doc, "data"));
}

static uint64_t volume_capacity(const struct vd_backend *b, const json_t *doc)
{
	return b->ops->spec_size ? b->ops->spec_size(b->priv, json_object_get(doc, "spec")) : 0;
}

static json_t *view_of(struct vd_core *core, const json_t *doc)
{
	const char *name = vd_doc_str(doc, "name");
	const struct vd_backend *b = vd_backend_find(core->backends, vd_doc_str(doc, "driver"));
	if (!b)
		return NULL;
	json_t *record = vd_node_record(core->node, name);
	char *mountpoint = volume_mountpoint(b, doc, record);
	json_t *view = json_pack("{s:s, s:s, s:s, s:s, s:O, s:o}", "name", name, "driver",
				 b->ops->name, "created_at", vd_doc_str(doc, "created_at"),
				 "mountpoint", mountpoint ? mountpoint : "", "options",
				 json_object_get(doc, "options"), "status",
				 view_status(core, b, doc, record));
	if (view)
		json_object_set_new(view, "capacity_bytes",
				    json_integer((json_int_t)volume_capacity(b, doc)));
	free(mountpoint);
	json_decref(record);
	return view;
}

int vd_core_inspect(struct vd_core *core, const char *name, json_t **ret_view,
		    struct vd_err *err)
{
	json_t *doc;
	int r = doc_get(core, name, &doc, err);
	if (r < 0)
		return r;
	json_t *view = view_of(core, doc);
	json_decref(doc);
	if (!view)
		return vd_err_set(err, -ENOMEM, "cannot describe volume %s", name);
	*ret_view = view;
	return 0;
}

/* The driver's live facts into the view's status; a backend that does not
 * answer is reported there ("probe_error"), not as the inspect's failure. */
static void view_probe(struct vd_core *core, const json_t *doc, json_t *view)
{
	const struct vd_backend *b = vd_backend_find(core->backends, vd_doc_str(doc, "driver"));
	json_t *status = json_object_get(view, "status");
	if (!b || !b->ops->probe || !status)
		return;
	struct vd_err err = VD_ERR_INIT;
	if (b->ops->probe(b->priv, vd_doc_str(doc, "name"), json_object_get(doc, "spec"),
			  json_object_get(doc, "data"), status, &err) < 0)
		json_object_set_new(status, "probe_error", json_string(vd_err_msg(&err)));
}

int vd_core_inspect_live(struct vd_core *core, const char *name, json_t **ret_view,
			 struct vd_err *err)
{
	json_t *doc;
	int r = doc_get(core, name, &doc, err);
	if (r < 0)
		return r;
	json_t *view = view_of(core, doc);
	if (view)
		view_probe(core, doc, view);
	json_decref(doc);
	if (!view)
		return vd_err_set(err, -ENOMEM, "cannot describe volume %s", name);
	*ret_view = view;
	return 0;
}

int vd_core_list(struct vd_core *core, json_t **ret_views, struct vd_err *err)
{
	json_t *docs, *doc;
	size_t i;
	int r = docs_list(core, &docs, err);
	if (r < 0)
		return r;
	json_t *views = json_array();
	json_array_foreach(docs, i, doc) {
		json_t *view = view_of(core, doc);
		if (view)
			json_array_append_new(views, view);
	}
	json_decref(docs);
	*ret_views = views;
	return 0;
}

static int visit_one(struct vd_core *core, const json_t *doc, vd_core_visit_fn fn,
		     void *userdata)
{
	const char *name = vd_doc_str(doc, "name");
	const struct vd_backend *b = vd_backend_find(core->backends, vd_doc_str(doc, "driver"));
	if (!b)
		return 0;
	json_t *record = vd_node_record(core->node, name);
	char *mountpoint = volume_mountpoint(b, doc, record);
	struct vd_volume_brief brief = {
		.name = name,
		.driver = b->ops->name,
		.created_at = vd_doc_str(doc, "created_at"),
		.mountpoint = mountpoint ? mountpoint : "",
		.capacity_bytes = volume_capacity(b, doc),
		.attachments = json_object_get(doc, "attachments"),
	};
	int r = fn(&brief, userdata);
	free(mountpoint);
	json_decref(record);
	return r;
}

int vd_core_foreach(struct vd_core *core, vd_core_visit_fn fn, void *userdata,
		    struct vd_err *err)
{
	json_t *docs, *doc;
	size_t i;
	int r = docs_list(core, &docs, err);
	if (r < 0)
		return r;
	json_array_foreach(docs, i, doc)
		if ((r = visit_one(core, doc, fn, userdata)) != 0)
			break;
	json_decref(docs);
	return r;
}

/* Whether path is where the record's volume is: its path or a bind target. */
static int record_has_path(const json_t *record, const char *path)
{
	const char *id;
	json_t *bind;
	if (strcmp(vd_doc_str(record, "path"), path) == 0)
		return 1;
	json_object_foreach(json_object_get(record, "binds"), id, bind)
		if (strcmp(vd_doc_str(bind, "target"), path) == 0)
			return 1;
	return 0;
}

static void stats_of_block(const char *path, struct vd_volume_stats *st)
{
	uint64_t bytes = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	st->block = 1;
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
		st->abnormal = 1;
		snprintf(st->message, sizeof(st->message), "block device %s: %s", path,
			 strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	st->bytes_total = bytes;
}

static void stats_of_fs(const char *path, struct vd_volume_stats *st)
{
	struct statvfs vfs;
	if (statvfs(path, &vfs) < 0) {
		st->abnormal = 1;
		snprintf(st->message, sizeof(st->message), "%s: %s", path, strerror(errno));
		return;
	}
	st->bytes_total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	st->bytes_available = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	st->bytes_used = st->bytes_total - (uint64_t)vfs.f_bfree * vfs.f_frsize;
	st->inodes_total = vfs.f_files;
	st->inodes_free = vfs.f_ffree;
	st->inodes_used = vfs.f_files - vfs.f_ffree;
}

/* A volume whose mount went away behind our back is abnormal. */
static void stats_condition(struct vd_core *core, const char *name, const json_t *record,
			    struct vd_volume_stats *st)
{
	const struct vd_backend *b = vd_backend_find(core->backends, vd_doc_str(record, "driver"));
	struct vd_err err = VD_ERR_INIT;
	if (st->abnormal || st->block || !b || !b->ops->is_staged)
		return;
	int r = b->ops->is_staged(b->priv, name, json_object_get(record, "spec"),
				  json_object_get(record, "data"), &err);
	if (r != 1) {
		st->abnormal = 1;
		snprintf(st->message, sizeof(st->message), "volume %s is not mounted at %s: %s",
			 name, vd_doc_str(record, "path"), r < 0 ? vd_err_msg(&err) : "mount gone");
	}
}

int vd_core_volume_stats(struct vd_core *core, const char *name, const char *path,
			 struct vd_volume_stats *ret_stats, struct vd_err *err)
{
	int r = vd_name_check(name, err);
	if (r < 0)
		return r;
	json_t *record = vd_node_record(core->node, name);
	if (!record)
		return vd_err_set(err, -ENOENT, "volume %s is not mounted on node %s", name,
				  vd_node_id(core->node));
	struct vd_volume_stats st = { 0 };
	if (!path || !record_has_path(record, path)) {
		r = vd_err_set(err, -ENOENT, "volume %s is not mounted at %s on this node", name,
			       path ? path : "(none)");
	} else {
		if (strcmp(vd_doc_str(record, "mode"), "block") == 0)
			stats_of_block(path, &st);
		else
			stats_of_fs(path, &st);
		stats_condition(core, name, record, &st);
		*ret_stats = st;
	}
	json_decref(record);
	return r;
}

static long long rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	long long pages = 0, resident = 0;
	if (f) {
		if (fscanf(f, "%lld %lld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * 4096;
}

int vd_core_status(struct vd_core *core, json_t **ret_status, struct vd_err *err)
{
	json_t *drivers = json_array();
	for (size_t i = 0; vd_drivers[i]; i++)
		json_array_append_new(drivers, json_string(vd_drivers[i]->name));
	json_t *status = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:I, s:I}",
				   "version", VD_VERSION, "node_id", vd_node_id(core->node),
				   "role", core->remote ? "node" : "controller+node", "state_dir",
				   core->state_dir, "volumes", (json_int_t)(core->catalog ?
					vd_catalog_count(core->catalog) : 0),
				   "mounted", (json_int_t)vd_node_mounted_count(core->node),
				   "drivers", drivers, "uptime_s",
				   (json_int_t)(time(NULL) - core->started), "rss_bytes",
				   (json_int_t)rss_bytes());
	if (!status)
		return vd_err_set(err, -ENOMEM, "out of memory");
	*ret_status = status;
	return 0;
}

/* ---- metrics and health ---- */

struct helper_count {
	const struct vd_core *core;
	struct vd_metrics_gauges *g;
};

/* A helper whose mount point is <state_dir>/DRIVER/... serves this node. */
static int helper_counted(pid_t pid, const char *mnt, void *userdata)
{
	struct helper_count *h = userdata;
	size_t len = strlen(h->core->state_dir);
	(void)pid;
	if (strncmp(mnt, h->core->state_dir, len) != 0 || mnt[len] != '/')
		return 0;
	for (size_t i = 0; vd_drivers[i]; i++) {
		size_t n = strlen(vd_drivers[i]->name);
		if (strncmp(mnt + len + 1, vd_drivers[i]->name, n) == 0 && mnt[len + 1 + n] == '/')
			vd_metrics_count_add(h->g->helpers, &h->g->n_helpers, VD_METRICS_LABELS_MAX,
					     vd_drivers[i]->name, 1);
	}
	return 0;
}

/* The catalog's volumes by driver and attachments (on the controller),
 * this node's mounts and references, the helpers serving them. */
static int gauges_fill(struct vd_core *core, struct vd_metrics_gauges *g, struct vd_err *err)
{
	json_t *docs = NULL, *doc;
	size_t i;
	for (i = 0; vd_drivers[i]; i++) {
		vd_metrics_count_add(g->volumes, &g->n_volumes, VD_METRICS_LABELS_MAX,
				     vd_drivers[i]->name, 0);
		vd_metrics_count_add(g->helpers, &g->n_helpers, VD_METRICS_LABELS_MAX,
				     vd_drivers[i]->name, 0);
	}
	g->has_catalog = core->catalog != NULL;
	int r = core->catalog ? vd_catalog_list(core->catalog, &docs, err) : 0;
	if (r < 0)
		return r;
	json_array_foreach(docs, i, doc) {
		vd_metrics_count_add(g->volumes, &g->n_volumes, VD_METRICS_LABELS_MAX,
				     vd_doc_str(doc, "driver"), 1);
		g->attachments += json_object_size(json_object_get(doc, "attachments"));
	}
	json_decref(docs);
	g->mounted = vd_node_mounted_count(core->node);
	g->mount_refs = vd_node_refs_count(core->node);
	struct helper_count h = { core, g };
	vd_helper_foreach(helper_counted, &h);
	return 0;
}

int vd_core_metrics(struct vd_core *core, struct vd_metrics_snapshot *s, struct vd_err *err)
{
	s->version = VD_VERSION;
	s->start_time_seconds = (double)core->started;
	s->resident_bytes = (uint64_t)rss_bytes();
	return gauges_fill(core, &s->gauges, err);
}

int vd_core_health(struct vd_core *core, struct vd_err *err)
{
	char probe[PATH_MAX];
	snprintf(probe, sizeof(probe), "%s/.health-XXXXXX", core->state_dir);
	int fd = mkstemp(probe);
	if (fd < 0)
		return vd_err_set(err, -errno, "state directory %s is not writable: %s",
				  core->state_dir, strerror(errno));
	close(fd);
	unlink(probe);
	double age = core->remote ? vd_agent_contact_age_ms(core->agent) : 0;
	if (age > core->lease_ms)
		return vd_err_set(err, -ENOTCONN, "no contact with the controller for %.0f ms "
				  "(lease %d ms)", age, core->lease_ms);
	return 0;
}

/* ---- the cluster: the controller's side of node agents' calls ----------- */

int vd_core_heartbeat(struct vd_core *core, const char *node_id, const json_t *report,
		      json_t **ret_reply, struct vd_err *err)
{
	json_t *requests = NULL;
	int r = controller_only(core, "a heartbeat", err);
	if (r == 0)
		r = vd_nodes_heartbeat(core->nodes, node_id, report, &requests, err);
	if (r < 0)
		return r;
	*ret_reply = json_pack("{s:o, s:i}", "requests", requests, "lease_ms", core->lease_ms);
	return *ret_reply ? 0 : vd_err_set(err, -ENOMEM, "out of memory");
}

/* Each node with what it has attached. */
int vd_core_nodes(struct vd_core *core, json_t **ret_nodes, struct vd_err *err)
{
	json_t *nodes, *docs, *node, *doc, *reply;
	size_t i, k;
	if (core->remote) {
		int r = vd_remote_request(core->remote, "GET", "/v1/nodes", NULL, &reply, err);
		if (r == 0) {
			*ret_nodes = json_incref(json_object_get(reply, "nodes"));
			json_decref(reply);
		}
		return r;
	}
	int r = vd_nodes_list(core->nodes, &nodes, err);
	if (r == 0 && (r = docs_list(core, &docs, err)) < 0)
		json_decref(nodes);
	if (r < 0)
		return r;
	json_array_foreach(nodes, i, node) {
		json_t *names = json_array();
		const char *id = json_string_value(json_object_get(node, "id"));
		json_array_foreach(docs, k, doc)
			if (json_object_get(json_object_get(doc, "attachments"), id))
				json_array_append_new(names, json_string(vd_doc_str(doc, "name")));
		json_object_set_new(node, "attached", names);
	}
	json_decref(docs);
	*ret_nodes = nodes;
	return 0;
}

static int access_parse(const char *name, enum vd_access *ret, struct vd_err *err)
{
	static const char *const names[] = { "single", "multi", "readonly" };
	for (int i = 0; i < 3; i++)
		if (name && strcmp(name, names[i]) == 0) {
			*ret = (enum vd_access)i;
			return 0;
		}
	return vd_err_set(err, -EINVAL, "access '%.32s' is not one of single, multi, readonly",
			  name ? name : "");
}

int vd_core_attach(struct vd_core *core, const char *name, const char *node_id,
		   const char *access, int force, json_t **ret_doc, struct vd_err *err)
{
	enum vd_access a = VD_ACCESS_SINGLE;
	int r = controller_only(core, "attaching", err);
	if (r == 0 && (r = vd_name_check(name, err)) == 0 && (r = vd_name_check(node_id, err)) == 0 &&
	    (r = access ? access_parse(access, &a, err) : 0) == 0)
		r = core->ctl.ops->attach(core->ctl.ctl, name, node_id, a, force, ret_doc, err);
	return r;
}

int vd_core_detach(struct vd_core *core, const char *name, const char *node_id,
		   struct vd_err *err)
{
	int r = controller_only(core, "detaching", err);
	if (r == 0 && (r = vd_name_check(name, err)) == 0 && (r = vd_name_check(node_id, err)) == 0)
		r = core->ctl.ops->detach(core->ctl.ctl, name, node_id, err);
	return r;
}

int vd_core_document(struct vd_core *core, const char *name, json_t **ret_doc,
		     struct vd_err *err)
{
	return doc_get(core, name, ret_doc, err);
}

int vd_core_documents(struct vd_core *core, json_t **ret_docs, struct vd_err *err)
{
	return docs_list(core, ret_docs, err);
}

int vd_core_attached(struct vd_core *core, const char *node_id, json_t **ret_names,
		     struct vd_err *err)
{
	int r = vd_name_check(node_id, err);
	return r < 0 ? r : core->ctl.ops->attached(core->ctl.ctl, node_id, ret_names, err);
}

int vd_core_create_at(struct vd_core *core, const char *name, const char *driver,
		      const json_t *opts, const char *home, struct vd_err *err)
{
	json_t *rest = NULL;
	if (!home || core->remote)
		return vd_core_create(core, name, driver, opts, err);
	int r = driver_option(opts, &driver, &rest, err);
	if (r == 0)
		r = vd_catalog_create_at(core->catalog, name, driver ? driver : core->default_driver,
					 rest, NULL, home, err);
	json_decref(rest);
	return r;
}

/* 1 when node_id holds the volume now. */
static int attached_to(struct vd_core *core, const char *name, const char *node_id)
{
	json_t *doc;
	if (doc_get(core, name, &doc, NULL) < 0)
		return 0;
	int yes = json_object_get(json_object_get(doc, "attachments"), node_id) != NULL;
	json_decref(doc);
	return yes;
}

/* By hand: node `to` is asked to mount the volume (its attach moves it,
 * asking the holder to let go — forcibly with force); waits until it did,
 * at most the move wait plus two leases. */
int vd_core_move(struct vd_core *core, const char *name, const char *to, int force,
		 struct vd_err *err)
{
	if (core->remote) {
		char path[512];
		json_t *body = json_pack("{s:s, s:b}", "to", to, "force", force);
		snprintf(path, sizeof(path), "/v1/volumes/%s/move", name);
		int r = vd_name_check(name, err);
		if (r == 0)
			r = vd_remote_request(core->remote, "POST", path, body, NULL, err);
		json_decref(body);
		return r;
	}
	json_t *doc;
	int r = vd_name_check(name, err);
	if (r == 0 && (r = vd_name_check(to, err)) == 0 && !vd_core_node_known(core, to))
		r = vd_err_set(err, -ENOENT, "unknown node '%s' (volctl nodes lists them)", to);
	if (r == 0 && (r = doc_get(core, name, &doc, err)) == 0)
		json_decref(doc);
	if (r < 0 || attached_to(core, name, to))
		return r;
	/* `to`'s attach asks the holder to let go (by force when asked) */
	vd_nodes_ask(core->nodes, to, "mount", name, force);
	double deadline = vd_now_ms() + core->move_wait_ms + 2.0 * core->lease_ms;
	char why[512];
	/* done when `to` says its mount is done, not when the catalog says so */
	while (!attached_to(core, name, to) || !vd_nodes_done(core->nodes, to, name)) {
		if (vd_nodes_refusal(core->nodes, to, name, why, sizeof(why)))
			return vd_err_set(err, -EBUSY, "node %s could not take volume %s: %s", to, name,
					  why);
		if (vd_now_ms() >= deadline)
			return vd_err_set(err, -ETIMEDOUT, "volume %s did not reach node %s within %.0f "
					  "s; see both nodes' logs (volctl nodes shows their state)",
					  name, to, (core->move_wait_ms + 2.0 * core->lease_ms) / 1000);
		vd_nodes_wait(core->nodes, vd_now_ms() + 200);
	}
	vd_log(VD_LOG_INFO, "core volume=%s: moved to node %s%s", name, to, force ? " (forced)" : "");
	return 0;
}
