/* config.c — embedded defaults, then the JSON config file, then the
 * environment (VOLUMED_*), then flags; each layer overrides the one before.
 * Single-threaded: used once at start. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "names.h"

struct config_key {
	const char *key;     /* JSON key */
	const char *env;     /* environment variable */
	int flag;            /* getopt_long value */
	size_t offset;       /* char * member of struct vd_config */
	int kind;            /* KEY_NAME, KEY_PATH (absolute or ""), KEY_ENDPOINT */
};

enum { OPT_STATE_DIR = 1000, OPT_DOCKER_SOCKET, OPT_API_SOCKET, OPT_NODE_ID, OPT_LOG_LEVEL,
       OPT_CONFIG, OPT_HELP, OPT_VERSION, OPT_DEFAULT_DRIVER, OPT_CSI_ENDPOINT,
       OPT_CSI_SCOPE };

/* How a key's value is checked. */
enum { KEY_NAME = 0, KEY_PATH, KEY_ENDPOINT, KEY_CSI_SCOPE };

static const struct config_key string_keys[] = {
	{ "state_dir", "VOLUMED_STATE_DIR", OPT_STATE_DIR, offsetof(struct vd_config, state_dir), KEY_PATH },
	{ "docker_socket", "VOLUMED_DOCKER_SOCKET", OPT_DOCKER_SOCKET,
	  offsetof(struct vd_config, docker_socket), KEY_PATH },
	{ "api_socket", "VOLUMED_API_SOCKET", OPT_API_SOCKET, offsetof(struct vd_config, api_socket), KEY_PATH },
	{ "csi_endpoint", "CSI_ENDPOINT", OPT_CSI_ENDPOINT, offsetof(struct vd_config, csi_endpoint),
	  KEY_ENDPOINT },
	{ "csi_controller_scope", "VOLUMED_CSI_CONTROLLER_SCOPE", OPT_CSI_SCOPE,
	  offsetof(struct vd_config, csi_controller_scope), KEY_CSI_SCOPE },
	{ "node_id", "VOLUMED_NODE_ID", OPT_NODE_ID, offsetof(struct vd_config, node_id), KEY_NAME },
	{ "default_driver", "VOLUMED_DEFAULT_DRIVER", OPT_DEFAULT_DRIVER,
	  offsetof(struct vd_config, default_driver), KEY_NAME },
};
#define N_STRING_KEYS (sizeof(string_keys) / sizeof(string_keys[0]))

static const char usage[] =
	"usage: volumed [--config FILE] [--state-dir DIR] [--docker-socket PATH]\n"
	"               [--api-socket PATH] [--csi-endpoint URL]\n"
	"               [--csi-controller-scope cluster|node] [--node-id ID]\n"
	"               [--log-level LEVEL]\n"
	"               [--default-driver NAME] [--help] [--version]\n"
	"\n"
	"  --config FILE         JSON config file (keys: state_dir, docker_socket,\n"
	"                        api_socket, csi_endpoint, csi_controller_scope,\n"
	"                        node_id, log_level, default_driver, drivers)\n"
	"  --state-dir DIR       state directory (default " VD_DEFAULT_STATE_DIR ")\n"
	"  --docker-socket PATH  Docker plugin socket, \"\" to disable\n"
	"                        (default " VD_DEFAULT_DOCKER_SOCKET ")\n"
	"  --api-socket PATH     REST API socket, \"\" to disable\n"
	"                        (default " VD_DEFAULT_API_SOCKET ")\n"
	"  --csi-endpoint URL    CSI gRPC endpoint, unix:///PATH, \"\" to disable\n"
	"                        (default " VD_DEFAULT_CSI_ENDPOINT ")\n"
	"  --csi-controller-scope cluster|node\n"
	"                        node: one of many per-node CSI controllers, leaving out\n"
	"                        attach and controller expansion (default cluster)\n"
	"  --node-id ID          this node's name (default: the host name)\n"
	"  --log-level LEVEL     debug, info, warn or error (default info)\n"
	"  --default-driver NAME driver for volumes created without one (default local)\n"
	"\n"
	"Environment: VOLUMED_CONFIG, VOLUMED_STATE_DIR, VOLUMED_DOCKER_SOCKET,\n"
	"VOLUMED_API_SOCKET, CSI_ENDPOINT, VOLUMED_CSI_CONTROLLER_SCOPE, VOLUMED_NODE_ID,\n"
	"VOLUMED_LOG_LEVEL, VOLUMED_DEFAULT_DRIVER.\n"
	"Precedence: flags, then environment, then config file, then defaults.\n";

static char **member(struct vd_config *cfg, const struct config_key *k)
{
	return (char **)((char *)cfg + k->offset);
}

static int set_string(struct vd_config *cfg, const struct config_key *k, const char *value,
		      const char *origin, struct vd_err *err)
{
	size_t len = strlen(value);
	if (len >= 4096)
		return vd_err_set(err, -EINVAL, "%s %s: longer than 4095 characters", origin, k->key);
	if (k->kind == KEY_PATH && len && value[0] != '/')
		return vd_err_set(err, -EINVAL, "%s %s: '%s' is not an absolute path", origin, k->key,
				  value);
	if (k->kind == KEY_PATH && !len && k->offset == offsetof(struct vd_config, state_dir))
		return vd_err_set(err, -EINVAL, "%s %s: must not be empty", origin, k->key);
	if (k->kind == KEY_ENDPOINT && len && !vd_config_endpoint_path(value))
		return vd_err_set(err, -EINVAL, "%s %s: '%s' is not unix:///ABSOLUTE/PATH", origin,
				  k->key, value);
	if (k->kind == KEY_CSI_SCOPE && strcmp(value, "cluster") != 0 && strcmp(value, "node") != 0)
		return vd_err_set(err, -EINVAL, "%s %s: '%.40s' is not one of cluster, node", origin,
				  k->key, value);
	if (k->kind == KEY_NAME) {
		struct vd_err name_err = VD_ERR_INIT;
		if (vd_name_check(value, &name_err) < 0)
			return vd_err_set(err, -EINVAL, "%s %s: '%.60s' must match %s", origin,
					  k->key, value, VD_NAME_RULE);
	}
	char *copy = strdup(value);
	if (!copy)
		return vd_err_set(err, -ENOMEM, "out of memory");
	free(*member(cfg, k));
	*member(cfg, k) = copy;
	return 0;
}

static int set_level(struct vd_config *cfg, const char *value, const char *origin,
		     struct vd_err *err)
{
	if (vd_log_parse_level(value, &cfg->log_level) < 0)
		return vd_err_set(err, -EINVAL, "%s log_level: '%.40s' is not one of debug, info, "
				  "warn, error", origin, value);
	return 0;
}

const char *vd_config_endpoint_path(const char *endpoint)
{
	if (strncmp(endpoint, "unix://", 7) == 0)
		endpoint += 7;
	else if (strncmp(endpoint, "unix:", 5) == 0)
		endpoint += 5;
	return endpoint[0] == '/' ? endpoint : NULL;
}

void vd_config_defaults(struct vd_config *cfg)
{
	char host[256] = "localhost";
	memset(cfg, 0, sizeof(*cfg));
	gethostname(host, sizeof(host) - 1);
	cfg->state_dir = strdup(VD_DEFAULT_STATE_DIR);
	cfg->docker_socket = strdup(VD_DEFAULT_DOCKER_SOCKET);
	cfg->api_socket = strdup(VD_DEFAULT_API_SOCKET);
	cfg->csi_endpoint = strdup(VD_DEFAULT_CSI_ENDPOINT);
	cfg->csi_controller_scope = strdup("cluster");
	cfg->node_id = strdup(vd_name_check(host, NULL) == 0 ? host : "localhost");
	cfg->default_driver = strdup("local");
	cfg->log_level = VD_LOG_INFO;
}

void vd_config_clear(struct vd_config *cfg)
{
	for (size_t i = 0; i < N_STRING_KEYS; i++) {
		free(*member(cfg, &string_keys[i]));
		*member(cfg, &string_keys[i]) = NULL;
	}
	json_decref(cfg->drivers);
	cfg->drivers = NULL;
}

static const struct config_key *key_find(const char *key)
{
	for (size_t i = 0; i < N_STRING_KEYS; i++)
		if (strcmp(string_keys[i].key, key) == 0)
			return &string_keys[i];
	return NULL;
}

static int apply_member(struct vd_config *cfg, const char *key, json_t *value,
			struct vd_err *err)
{
	const struct config_key *k = key_find(key);
	if (strcmp(key, "drivers") == 0) {
		if (!json_is_object(value))
			return vd_err_set(err, -EINVAL, "config drivers: expected an object such as "
					  "{\"local\": {...}}");
		json_decref(cfg->drivers);
		cfg->drivers = json_deep_copy(value);
		return 0;
	}
	if (!k && strcmp(key, "log_level") != 0)
		return vd_err_set(err, -EINVAL, "config: unknown key '%.60s'; allowed: state_dir, "
				  "docker_socket, api_socket, csi_endpoint, csi_controller_scope, "
				  "node_id, log_level, default_driver, drivers", key);
	if (!json_is_string(value))
		return vd_err_set(err, -EINVAL, "config %s: expected a string", key);
	if (!k)
		return set_level(cfg, json_string_value(value), "config", err);
	return set_string(cfg, k, json_string_value(value), "config", err);
}

int vd_config_apply_json(struct vd_config *cfg, const json_t *doc, struct vd_err *err)
{
	const char *key;
	json_t *value;
	if (!json_is_object(doc))
		return vd_err_set(err, -EINVAL, "config: expected a JSON object at the top level");
	json_object_foreach((json_t *)doc, key, value) {
		int r = apply_member(cfg, key, value, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int apply_file(struct vd_config *cfg, const char *path, struct vd_err *err)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return vd_err_set(err, -EINVAL, "config %s: line %d: %s", path, jerr.line, jerr.text);
	int r = vd_config_apply_json(cfg, doc, err);
	json_decref(doc);
	if (r < 0)
		vd_err_prefix(err, "%s", path);
	return r;
}

static int apply_env(struct vd_config *cfg, struct vd_err *err)
{
	for (size_t i = 0; i < N_STRING_KEYS; i++) {
		const char *v = getenv(string_keys[i].env);
		int r = v ? set_string(cfg, &string_keys[i], v, string_keys[i].env, err) : 0;
		if (r < 0)
			return r;
	}
	const char *level = getenv("VOLUMED_LOG_LEVEL");
	return level ? set_level(cfg, level, "VOLUMED_LOG_LEVEL", err) : 0;
}

static const struct option long_options[] = {
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "docker-socket", required_argument, NULL, OPT_DOCKER_SOCKET },
	{ "api-socket", required_argument, NULL, OPT_API_SOCKET },
	{ "csi-endpoint", required_argument, NULL, OPT_CSI_ENDPOINT },
	{ "csi-controller-scope", required_argument, NULL, OPT_CSI_SCOPE },
	{ "node-id", required_argument, NULL, OPT_NODE_ID },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "default-driver", required_argument, NULL, OPT_DEFAULT_DRIVER },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* First pass: --help, --version and the config file's path. */
static int scan_args(int argc, char **argv, const char **ret_config, struct vd_err *err)
{
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_HELP:
			fputs(usage, stdout);
			return 1;
		case OPT_VERSION:
			printf("volumed %s\n", VD_VERSION);
			return 1;
		case OPT_CONFIG:
			*ret_config = optarg;
			break;
		case '?':
			return vd_err_set(err, -EINVAL, "unknown or incomplete option '%s'; see volumed "
					  "--help", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return vd_err_set(err, -EINVAL, "unexpected argument '%s'; see volumed --help",
				  argv[optind]);
	return 0;
}

static int apply_flags(struct vd_config *cfg, int argc, char **argv, struct vd_err *err)
{
	int c, r = 0;
	optind = 1;
	while (r == 0 && (c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		for (size_t i = 0; i < N_STRING_KEYS; i++)
			if (string_keys[i].flag == c)
				r = set_string(cfg, &string_keys[i], optarg, "flag", err);
		if (c == OPT_LOG_LEVEL)
			r = set_level(cfg, optarg, "flag", err);
	}
	return r;
}

int vd_config_from_args(struct vd_config *cfg, int argc, char **argv, struct vd_err *err)
{
	const char *file = getenv("VOLUMED_CONFIG");
	vd_config_defaults(cfg);
	int r = scan_args(argc, argv, &file, err);
	if (r != 0)
		return r;
	if (file && (r = apply_file(cfg, file, err)) < 0)
		return r;
	if ((r = apply_env(cfg, err)) < 0)
		return r;
	return apply_flags(cfg, argc, argv, err);
}
