/* config.h — embedded defaults, then the JSON config file, then flags.
 * Parsing does no I/O beyond reading the named file. */
#ifndef VD_CONFIG_H
#define VD_CONFIG_H

#include <jansson.h>

#include "err.h"
#include "log.h"

#define VD_DEFAULT_STATE_DIR "/var/lib/volumed"
#define VD_DEFAULT_DOCKER_SOCKET "/run/docker/plugins/volumed.sock"
#define VD_DEFAULT_API_SOCKET "/run/volumed/api.sock"
#define VD_DEFAULT_CSI_ENDPOINT "unix:///run/volumed/csi.sock"

struct vd_config {
	char *state_dir;
	char *docker_socket;   /* "" disables the Docker plugin */
	char *api_socket;      /* "" disables the REST API */
	char *csi_endpoint;    /* unix:///path, or "" to disable CSI */
	char *csi_controller_scope;  /* "cluster" or "node" */
	char *node_id;         /* default: the host name */
	enum vd_log_level log_level;
	char *default_driver;
	json_t *drivers;       /* {"local": {...}} */
};

/* Fills cfg from defaults, the config file and argv. Returns 0, 1 when
 * --help or --version was printed (exit 0), or a negative errno. */
int vd_config_from_args(struct vd_config *cfg, int argc, char **argv, struct vd_err *err);
/* Applies a config document (already parsed JSON) over cfg. Pure. */
int vd_config_apply_json(struct vd_config *cfg, const json_t *doc, struct vd_err *err);
void vd_config_defaults(struct vd_config *cfg);
/* The socket path of a CSI endpoint (unix:///p, unix:/p or /p), or NULL. */
const char *vd_config_endpoint_path(const char *endpoint);
void vd_config_clear(struct vd_config *cfg);

#endif
