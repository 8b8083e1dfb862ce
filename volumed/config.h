/* config.h — embedded defaults, then the JSON config file, the environment,
 * then flags. Parsing does no I/O beyond reading the named file; finishing
 * reads the token file and checks that the TLS and CA files are readable. */
#ifndef VD_CONFIG_H
#define VD_CONFIG_H

#include <jansson.h>

#include "err.h"
#include "log.h"

#define VD_DEFAULT_STATE_DIR "/var/lib/volumed"
#define VD_DEFAULT_DOCKER_SOCKET "/run/docker/plugins/volumed.sock"
#define VD_DEFAULT_API_SOCKET "/run/volumed/api.sock"
#define VD_DEFAULT_CSI_ENDPOINT "unix:///run/volumed/csi.sock"
#define VD_DEFAULT_LEASE_MS 10000
#define VD_LEASE_MS_MIN 1000
#define VD_LEASE_MS_MAX 600000
#define VD_DEFAULT_MOVE_WAIT_MS 30000
#define VD_MOVE_WAIT_MS_MIN 0
#define VD_MOVE_WAIT_MS_MAX 600000

struct vd_config {
	char *state_dir;
	char *docker_socket;   /* "" disables the Docker plugin */
	char *api_socket;      /* "" disables the REST API */
	char *csi_endpoint;    /* unix:///path, or "" to disable CSI */
	char *csi_controller_scope;  /* "cluster" or "node" */
	char *node_id;         /* default: the host name */
	enum vd_log_level log_level;
	enum vd_log_format log_format;
	char *default_driver;
	json_t *drivers;       /* {"local": {...}} */
	/* Cluster. Strings are "" when unset, never NULL. */
	char *listen;          /* "HOST:PORT": the REST API over HTTPS on TCP too */
	char *tls_cert;        /* PEM files of that listener (absolute paths) */
	char *tls_key;
	char *token_file;      /* the bearer token's file (required with listen
				* or controller_url) */
	char *controller_url;  /* "https://HOST:PORT" (no trailing '/'): this
				* process is a node agent; "": the controller */
	char *ca_file;         /* CA bundle for controller_url; "": the system's */
	int lease_ms;          /* node lease, VD_LEASE_MS_MIN..MAX */
	int move_wait_ms;      /* a move's wait for the old node, VD_MOVE_WAIT_MS_MIN..MAX */
	char *token;           /* token_file's token (read by vd_config_finish),
				* NULL without one; secret: never logged, zeroed
				* by vd_config_clear */
};

/* Fills cfg from defaults, the config file, the environment and argv, then
 * vd_config_finish. Returns 0, 1 when --help or --version was printed (exit
 * 0), or a negative errno. cfg must be cleared in every case. */
int vd_config_from_args(struct vd_config *cfg, int argc, char **argv, struct vd_err *err);
/* Applies a config document (already parsed JSON) over cfg. Pure. */
int vd_config_apply_json(struct vd_config *cfg, const json_t *doc, struct vd_err *err);
void vd_config_defaults(struct vd_config *cfg);
/* The rules between keys (listen needs tls_cert, tls_key and token_file;
 * controller_url needs token_file), the files readable, and the token read
 * into cfg->token (a warning is logged when token_file is readable by group
 * or others). The messages name the key, never the token. */
int vd_config_finish(struct vd_config *cfg, struct vd_err *err);
/* Reads a token file: one line of printable ASCII without spaces, trailing
 * newlines stripped, at least 16 characters. ret_loose_mode (may be NULL):
 * 1 when group or others may read the file. */
int vd_config_read_token(const char *path, char **ret_token, int *ret_loose_mode,
			 struct vd_err *err);
/* The socket path of a CSI endpoint (unix:///p, unix:/p or /p), or NULL. */
const char *vd_config_endpoint_path(const char *endpoint);
void vd_config_clear(struct vd_config *cfg);

#endif
