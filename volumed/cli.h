/* cli.h — volctl's command line and its text output as pure functions:
 * argv into a struct vd_cli, and the server's documents into text. No I/O,
 * no locks, so both are unit-tested on their own. */
#ifndef VD_CLI_H
#define VD_CLI_H

#include <stdbool.h>

#include <jansson.h>

#include "err.h"

enum vd_cli_cmd {
	VD_CLI_HELP,
	VD_CLI_VERSION,
	VD_CLI_CREATE,
	VD_CLI_LS,
	VD_CLI_INSPECT,
	VD_CLI_RM,
	VD_CLI_MOUNT,
	VD_CLI_UNMOUNT,
	VD_CLI_STATUS,
	VD_CLI_NODES,
	VD_CLI_MOVE,
};

struct vd_cli {
	enum vd_cli_cmd cmd;
	const char *api_socket;  /* --api-socket, or NULL */
	const char *url;         /* --url https://HOST:PORT, or NULL */
	const char *token_file;  /* --token-file, or NULL */
	const char *ca_file;     /* --ca-file, or NULL */
	bool json;               /* --json: print the server's JSON */
	bool quiet;              /* --quiet: no progress line on the terminal */
	const char *name;        /* the volume of create, inspect, rm, mount, unmount */
	const char *driver;      /* create --driver, or NULL */
	const char *mount_id;    /* mount/unmount --id, or NULL */
	const char *to;          /* move --to NODE */
	bool force;              /* move --force */
	json_t *opts;            /* create's -o pairs as {key: value}, or NULL */
};

/* The usage text printed by --help and after usage errors. */
extern const char vd_cli_usage[];

/* Parses argv (argv[0] is the program name); strings point into argv.
 * A usage error is -EINVAL saying what was wrong. Clear with vd_cli_clear. */
int vd_cli_parse(int argc, char *const *argv, struct vd_cli *ret_cli, struct vd_err *err);
void vd_cli_clear(struct vd_cli *cli);

/* The API socket: --api-socket, else env (VOLCTL_API_SOCKET's value, NULL
 * or "" when unset), else VD_DEFAULT_API_SOCKET. */
const char *vd_cli_api_socket(const struct vd_cli *cli, const char *env);

/* The VOLCTL_* environment (each NULL or "" when unset). */
struct vd_cli_env {
	const char *api_socket;  /* VOLCTL_API_SOCKET */
	const char *url;         /* VOLCTL_URL */
	const char *token_file;  /* VOLCTL_TOKEN_FILE */
	const char *ca_file;     /* VOLCTL_CA_FILE */
};

/* Where volctl connects: a unix socket, or an HTTPS URL with a token file. */
struct vd_cli_target {
	const char *unix_socket; /* NULL when url is set */
	char url[512];           /* "https://HOST:PORT" (no trailing '/'), or "" */
	const char *token_file;  /* with url: required */
	const char *ca_file;     /* with url: NULL for the system's CAs */
};

/* Flags, then environment: --api-socket or --url (not both); else
 * VOLCTL_URL, else VOLCTL_API_SOCKET, else the default socket. A URL must
 * be https://HOST:PORT and needs a token file. A usage error is -EINVAL. */
int vd_cli_target(const struct vd_cli *cli, const struct vd_cli_env *env,
		  struct vd_cli_target *ret_target, struct vd_err *err);

/* What a slow command is doing, for the progress line: "mounting m1",
 * "creating big (8Ti)", "moving m1 to node b". false for the quick
 * commands (ls, inspect, status, nodes), which show none. */
bool vd_cli_progress_label(const struct vd_cli *cli, char *buf, size_t len);

/* `ls`: a table NAME DRIVER TYPE SIZE REFS MOUNTPOINT of {"volumes": [view...]}.
 * `status`: "key: value" lines of the status document.
 * Both return malloc'd text ending in a newline, NULL when out of memory. */
char *vd_cli_format_list(const json_t *reply);
char *vd_cli_format_status(const json_t *status);
/* `nodes`: a table NODE STATE HEARTBEAT ATTACHED of {"nodes": [...]}. */
char *vd_cli_format_nodes(const json_t *reply);

#endif
