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
};

struct vd_cli {
	enum vd_cli_cmd cmd;
	const char *api_socket;  /* --api-socket, or NULL */
	bool json;               /* --json: print the server's JSON */
	const char *name;        /* the volume of create, inspect, rm, mount, unmount */
	const char *driver;      /* create --driver, or NULL */
	const char *mount_id;    /* mount/unmount --id, or NULL */
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

/* `ls`: a table NAME DRIVER TYPE SIZE REFS MOUNTPOINT of {"volumes": [view...]}.
 * `status`: "key: value" lines of the status document.
 * Both return malloc'd text ending in a newline, NULL when out of memory. */
char *vd_cli_format_list(const json_t *reply);
char *vd_cli_format_status(const json_t *status);

#endif
