/* config.c — embedded defaults, then the JSON config file, then the
 * environment (VOLUMED_*), then flags; each layer overrides the one before.
 * Then the rules between keys and the token file (vd_config_finish): the
 * token is kept in memory only, never in a message. Single-threaded: used
 * once at start. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "http.h"
#include "names.h"

#define TOKEN_MIN 16
#define TOKEN_FILE_MAX 4096

struct config_key {
	const char *key;     /* JSON key */
	const char *env;     /* environment variable */
	int flag;            /* getopt_long value */
	size_t offset;       /* char * member of struct vd_config */
	int kind;            /* KEY_NAME, KEY_PATH (absolute or ""), KEY_ENDPOINT, ... */
};

/* A whole number of milliseconds in [min, max]. */
struct config_int_key {
	const char *key;
	const char *env;
	int flag;
	size_t offset;       /* int member of struct vd_config */
	int min, max;
};

enum { OPT_STATE_DIR = 1000, OPT_DOCKER_SOCKET, OPT_API_SOCKET, OPT_NODE_ID, OPT_LOG_LEVEL,
       OPT_CONFIG, OPT_HELP, OPT_VERSION, OPT_DEFAULT_DRIVER, OPT_CSI_ENDPOINT,
       OPT_CSI_SCOPE, OPT_LISTEN, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TOKEN_FILE,
       OPT_CONTROLLER_URL, OPT_CA_FILE, OPT_LEASE_MS, OPT_MOVE_WAIT_MS, OPT_LOG_FORMAT };

/* How a key's value is checked. KEY_LISTEN: "" or HOST:PORT; KEY_URL: ""
 * or https://HOST:PORT. */
enum { KEY_NAME = 0, KEY_PATH, KEY_ENDPOINT, KEY_CSI_SCOPE, KEY_LISTEN, KEY_URL };

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
	{ "listen", "VOLUMED_LISTEN", OPT_LISTEN, offsetof(struct vd_config, listen), KEY_LISTEN },
	{ "tls_cert", "VOLUMED_TLS_CERT", OPT_TLS_CERT, offsetof(struct vd_config, tls_cert),
	  KEY_PATH },
	{ "tls_key", "VOLUMED_TLS_KEY", OPT_TLS_KEY, offsetof(struct vd_config, tls_key), KEY_PATH },
	{ "token_file", "VOLUMED_TOKEN_FILE", OPT_TOKEN_FILE,
	  offsetof(struct vd_config, token_file), KEY_PATH },
	{ "controller_url", "VOLUMED_CONTROLLER_URL", OPT_CONTROLLER_URL,
	  offsetof(struct vd_config, controller_url), KEY_URL },
	{ "ca_file", "VOLUMED_CA_FILE", OPT_CA_FILE, offsetof(struct vd_config, ca_file), KEY_PATH },
};
#define N_STRING_KEYS (sizeof(string_keys) / sizeof(string_keys[0]))

static const struct config_int_key int_keys[] = {
	{ "lease_ms", "VOLUMED_LEASE_MS", OPT_LEASE_MS, offsetof(struct vd_config, lease_ms),
	  VD_LEASE_MS_MIN, VD_LEASE_MS_MAX },
	{ "move_wait_ms", "VOLUMED_MOVE_WAIT_MS", OPT_MOVE_WAIT_MS,
	  offsetof(struct vd_config, move_wait_ms), VD_MOVE_WAIT_MS_MIN, VD_MOVE_WAIT_MS_MAX },
};
#define N_INT_KEYS (sizeof(int_keys) / sizeof(int_keys[0]))

#define ALLOWED_KEYS "state_dir, docker_socket, api_socket, csi_endpoint, " \
	"csi_controller_scope, node_id, log_level, log_format, default_driver, drivers, listen, tls_cert, " \
	"tls_key, token_file, controller_url, ca_file, lease_ms, move_wait_ms"

#define STR(x) #x
#define XSTR(x) STR(x)

static const char usage[] =
	"usage: volumed [--config FILE] [--state-dir DIR] [--docker-socket PATH]\n"
	"               [--api-socket PATH] [--csi-endpoint URL]\n"
	"               [--csi-controller-scope cluster|node] [--node-id ID]\n"
	"               [--log-level LEVEL] [--log-format text|json]\n"
	"               [--default-driver NAME]\n"
	"               [--listen ADDR:PORT --tls-cert FILE --tls-key FILE]\n"
	"               [--token-file FILE] [--controller-url https://HOST:PORT]\n"
	"               [--ca-file FILE] [--lease-ms MS] [--move-wait-ms MS]\n"
	"               [--help] [--version]\n"
	"\n"
	"  --config FILE         JSON config file (keys: the options' names with '_'\n"
	"                        for '-', e.g. state_dir, token_file; and drivers);\n"
	"                        \"\" for none\n"
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
	"  --log-format FORMAT   text, or json: one JSON object per line (default text)\n"
	"  --default-driver NAME driver for volumes created without one (default local)\n"
	"\n"
	"Cluster (see docs/configuration.md):\n"
	"  --listen ADDR:PORT    also serve the REST API over HTTPS on TCP: IPV4:PORT,\n"
	"                        [IPV6]:PORT or HOST:PORT (default \"\": off); needs\n"
	"                        --tls-cert, --tls-key and --token-file\n"
	"  --tls-cert FILE       PEM certificate (chain) of the HTTPS API\n"
	"  --tls-key FILE        PEM private key of the HTTPS API, unencrypted\n"
	"  --token-file FILE     the bearer token every HTTPS request must carry and a\n"
	"                        node agent sends (at least " XSTR(TOKEN_MIN) " characters; mode 0600)\n"
	"  --controller-url URL  https://HOST:PORT of the controller: this process is\n"
	"                        then a node agent (default \"\": it is the controller)\n"
	"  --ca-file FILE        CA bundle to verify the controller's certificate\n"
	"                        (default: the system's CAs)\n"
	"  --lease-ms MS         node lease, " XSTR(VD_LEASE_MS_MIN) ".." XSTR(VD_LEASE_MS_MAX)
	" (default " XSTR(VD_DEFAULT_LEASE_MS) ")\n"
	"  --move-wait-ms MS     how long a move waits for the old node to let go,\n"
	"                        " XSTR(VD_MOVE_WAIT_MS_MIN) ".." XSTR(VD_MOVE_WAIT_MS_MAX)
	" (default " XSTR(VD_DEFAULT_MOVE_WAIT_MS) ")\n"
	"\n"
	"Environment: VOLUMED_CONFIG, VOLUMED_STATE_DIR, VOLUMED_DOCKER_SOCKET,\n"
	"VOLUMED_API_SOCKET, CSI_ENDPOINT, VOLUMED_CSI_CONTROLLER_SCOPE, VOLUMED_NODE_ID,\n"
	"VOLUMED_LOG_LEVEL, VOLUMED_LOG_FORMAT, VOLUMED_DEFAULT_DRIVER, VOLUMED_LISTEN, VOLUMED_TLS_CERT,\n"
	"VOLUMED_TLS_KEY, VOLUMED_TOKEN_FILE, VOLUMED_CONTROLLER_URL, VOLUMED_CA_FILE,\n"
	"VOLUMED_LEASE_MS, VOLUMED_MOVE_WAIT_MS.\n"
	"Precedence: flags, then environment, then config file, then defaults.\n";

static char **member(struct vd_config *cfg, const struct config_key *k)
{
	return (char **)((char *)cfg + k->offset);
}

/* "" or HOST:PORT with a port 1..65535. */
static int listen_check(const char *value, const char *origin, const char *key,
			struct vd_err *err)
{
	char host[256];
	unsigned port;
	struct vd_err why = VD_ERR_INIT;
	if (vd_http_split_hostport(value, host, sizeof(host), &port, &why) < 0)
		return vd_err_set(err, -EINVAL, "%s %s: %s", origin, key, why.msg);
	if (port == 0)
		return vd_err_set(err, -EINVAL, "%s %s: '%.80s': port 0 is not allowed; give a "
				  "fixed port 1..65535 that node agents can be told", origin, key,
				  value);
	return 0;
}

/* https://HOST:PORT, with at most a trailing '/', which is removed. */
static int url_check(char *value, const char *origin, const char *key, struct vd_err *err)
{
	static const char https[] = "https://";
	if (strncmp(value, "http://", 7) == 0)
		return vd_err_set(err, -EINVAL, "%s %s: '%.80s' is plain HTTP; only https:// is "
				  "accepted, because the bearer token must not cross the network "
				  "unencrypted", origin, key, value);
	if (strncmp(value, https, sizeof(https) - 1) != 0)
		return vd_err_set(err, -EINVAL, "%s %s: '%.80s' is not https://HOST:PORT", origin,
				  key, value);
	char *hostport = value + sizeof(https) - 1;
	size_t n = strlen(hostport);
	if (n && hostport[n - 1] == '/')
		hostport[n - 1] = '\0';
	if (strpbrk(hostport, "/?#@"))
		return vd_err_set(err, -EINVAL, "%s %s: '%.80s': no path, query or user part "
				  "allowed; give https://HOST:PORT", origin, key, value);
	return listen_check(hostport, origin, key, err);
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
	int r = 0;
	if (k->kind == KEY_LISTEN && len)
		r = listen_check(copy, origin, k->key, err);
	if (k->kind == KEY_URL && len)
		r = url_check(copy, origin, k->key, err);
	if (r < 0) {
		free(copy);
		return r;
	}
	free(*member(cfg, k));
	*member(cfg, k) = copy;
	return 0;
}

static int *int_member(struct vd_config *cfg, const struct config_int_key *k)
{
	return (int *)(void *)((char *)cfg + k->offset);
}

static int set_int(struct vd_config *cfg, const struct config_int_key *k, long long v,
		   const char *origin, struct vd_err *err)
{
	if (v < k->min || v > k->max)
		return vd_err_set(err, -EINVAL, "%s %s: %lld is out of range; allowed %d..%d "
				  "(milliseconds)", origin, k->key, v, k->min, k->max);
	*int_member(cfg, k) = (int)v;
	return 0;
}

/* An integer from a flag or the environment: decimal digits only. */
static int set_int_text(struct vd_config *cfg, const struct config_int_key *k,
			const char *text, const char *origin, struct vd_err *err)
{
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (!text[0] || *end || errno == ERANGE || strspn(text, "-0123456789") != strlen(text))
		return vd_err_set(err, -EINVAL, "%s %s: '%.40s' is not a whole number of "
				  "milliseconds; allowed %d..%d", origin, k->key, text, k->min,
				  k->max);
	return set_int(cfg, k, v, origin, err);
}

static int set_level(struct vd_config *cfg, const char *value, const char *origin,
		     struct vd_err *err)
{
	if (vd_log_parse_level(value, &cfg->log_level) < 0)
		return vd_err_set(err, -EINVAL, "%s log_level: '%.40s' is not one of debug, info, "
				  "warn, error", origin, value);
	return 0;
}

static int set_format(struct vd_config *cfg, const char *value, const char *origin,
		      struct vd_err *err)
{
	if (vd_log_parse_format(value, &cfg->log_format) < 0)
		return vd_err_set(err, -EINVAL, "%s log_format: '%.40s' is not one of text, json",
				  origin, value);
	return 0;
}

/* log_level or log_format. */
static int set_log_key(struct vd_config *cfg, const char *key, const char *value,
		       const char *origin, struct vd_err *err)
{
	return strcmp(key, "log_format") == 0 ? set_format(cfg, value, origin, err)
		: set_level(cfg, value, origin, err);
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
	cfg->log_format = VD_LOG_TEXT;
	cfg->listen = strdup("");
	cfg->tls_cert = strdup("");
	cfg->tls_key = strdup("");
	cfg->token_file = strdup("");
	cfg->controller_url = strdup("");
	cfg->ca_file = strdup("");
	cfg->token = NULL;
	cfg->lease_ms = VD_DEFAULT_LEASE_MS;
	cfg->move_wait_ms = VD_DEFAULT_MOVE_WAIT_MS;
}

void vd_config_clear(struct vd_config *cfg)
{
	for (size_t i = 0; i < N_STRING_KEYS; i++) {
		free(*member(cfg, &string_keys[i]));
		*member(cfg, &string_keys[i]) = NULL;
	}
	if (cfg->token)
		explicit_bzero(cfg->token, strlen(cfg->token));
	free(cfg->token);
	cfg->token = NULL;
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

static const struct config_int_key *int_key_find(const char *key)
{
	for (size_t i = 0; i < N_INT_KEYS; i++)
		if (strcmp(int_keys[i].key, key) == 0)
			return &int_keys[i];
	return NULL;
}

static int apply_member(struct vd_config *cfg, const char *key, json_t *value,
			struct vd_err *err)
{
	const struct config_key *k = key_find(key);
	const struct config_int_key *ik = int_key_find(key);
	if (ik) {
		if (!json_is_integer(value))
			return vd_err_set(err, -EINVAL, "config %s: expected a whole number of "
					  "milliseconds, %d..%d", key, ik->min, ik->max);
		return set_int(cfg, ik, (long long)json_integer_value(value), "config", err);
	}
	if (strcmp(key, "drivers") == 0) {
		if (!json_is_object(value))
			return vd_err_set(err, -EINVAL, "config drivers: expected an object such as "
					  "{\"local\": {...}}");
		json_decref(cfg->drivers);
		cfg->drivers = json_deep_copy(value);
		return 0;
	}
	if (!k && strcmp(key, "log_level") != 0 && strcmp(key, "log_format") != 0)
		return vd_err_set(err, -EINVAL, "config: unknown key '%.60s'; allowed: "
				  ALLOWED_KEYS, key);
	if (!json_is_string(value))
		return vd_err_set(err, -EINVAL, "config %s: expected a string", key);
	if (!k)
		return set_log_key(cfg, key, json_string_value(value), "config", err);
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
	for (size_t i = 0; i < N_INT_KEYS; i++) {
		const char *v = getenv(int_keys[i].env);
		int r = v ? set_int_text(cfg, &int_keys[i], v, int_keys[i].env, err) : 0;
		if (r < 0)
			return r;
	}
	const char *level = getenv("VOLUMED_LOG_LEVEL");
	int r = level ? set_level(cfg, level, "VOLUMED_LOG_LEVEL", err) : 0;
	const char *format = getenv("VOLUMED_LOG_FORMAT");
	return r == 0 && format ? set_format(cfg, format, "VOLUMED_LOG_FORMAT", err) : r;
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
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "default-driver", required_argument, NULL, OPT_DEFAULT_DRIVER },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "controller-url", required_argument, NULL, OPT_CONTROLLER_URL },
	{ "ca-file", required_argument, NULL, OPT_CA_FILE },
	{ "lease-ms", required_argument, NULL, OPT_LEASE_MS },
	{ "move-wait-ms", required_argument, NULL, OPT_MOVE_WAIT_MS },
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
		for (size_t i = 0; i < N_INT_KEYS; i++)
			if (int_keys[i].flag == c)
				r = set_int_text(cfg, &int_keys[i], optarg, "flag", err);
		if (c == OPT_LOG_LEVEL)
			r = set_level(cfg, optarg, "flag", err);
		if (c == OPT_LOG_FORMAT)
			r = set_format(cfg, optarg, "flag", err);
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
	if (file && file[0] && (r = apply_file(cfg, file, err)) < 0)
		return r;
	if ((r = apply_env(cfg, err)) < 0)
		return r;
	if ((r = apply_flags(cfg, argc, argv, err)) < 0)
		return r;
	return vd_config_finish(cfg, err);
}

/* ---- the rules between keys, and the token file ---- */

int vd_config_read_token(const char *path, char **ret_token, int *ret_loose_mode,
			 struct vd_err *err)
{
	char buf[TOKEN_FILE_MAX + 1];
	size_t len = 0;
	struct stat st;
	int r = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return vd_err_set(err, -errno, "token_file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = vd_err_set(err, -EINVAL, "token_file %s: not a regular file", path);
		goto out;
	}
	while (len < sizeof(buf)) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = vd_err_set(err, -errno, "token_file %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > TOKEN_FILE_MAX) {
		r = vd_err_set(err, -EINVAL, "token_file %s: larger than %d bytes; it holds one "
			       "token on one line", path, TOKEN_FILE_MAX);
		goto out;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len == 0) {
		r = vd_err_set(err, -EINVAL, "token_file %s: empty; put a random token of at "
			       "least %d characters in it (e.g. openssl rand -hex 32)", path,
			       TOKEN_MIN);
		goto out;
	}
	for (size_t i = 0; i < len; i++)
		if (buf[i] <= ' ' || buf[i] > '~') {
			r = vd_err_set(err, -EINVAL, "token_file %s: character %zu of the token is "
				       "a space, a control character or not ASCII; allowed: "
				       "printable ASCII without spaces, on one line", path, i + 1);
			goto out;
		}
	if (len < TOKEN_MIN) {
		r = vd_err_set(err, -EINVAL, "token_file %s: the token is %zu characters; at "
			       "least %d are required (e.g. openssl rand -hex 32)", path, len,
			       TOKEN_MIN);
		goto out;
	}
	char *token = strndup(buf, len);
	if (!token) {
		r = vd_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	*ret_token = token;
	if (ret_loose_mode)
		*ret_loose_mode = (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return r;
}

/* A file the daemon reads at start: readable now, so a typo fails here. */
static int file_check(const char *key, const char *path, struct vd_err *err)
{
	if (path[0] && access(path, R_OK) < 0)
		return vd_err_set(err, -EINVAL, "%s %s: %s", key, path, strerror(errno));
	return 0;
}

int vd_config_finish(struct vd_config *cfg, struct vd_err *err)
{
	int r;
	if (cfg->listen[0]) {
		if (!cfg->tls_cert[0] || !cfg->tls_key[0])
			return vd_err_set(err, -EINVAL, "listen %s needs %s (--tls-cert FILE "
					  "--tls-key FILE): the API over TCP is HTTPS only",
					  cfg->listen, !cfg->tls_cert[0] && !cfg->tls_key[0]
					  ? "tls_cert and tls_key" : !cfg->tls_cert[0] ? "tls_cert"
					  : "tls_key");
		if (!cfg->token_file[0])
			return vd_err_set(err, -EINVAL, "listen %s needs token_file (--token-file "
					  "FILE): every request over TCP must carry the bearer "
					  "token", cfg->listen);
	}
	if (cfg->controller_url[0] && !cfg->token_file[0])
		return vd_err_set(err, -EINVAL, "controller_url %s needs token_file "
				  "(--token-file FILE): the controller requires its bearer token",
				  cfg->controller_url);
	if ((r = file_check("tls_cert", cfg->tls_cert, err)) < 0 ||
	    (r = file_check("tls_key", cfg->tls_key, err)) < 0 ||
	    (r = file_check("ca_file", cfg->ca_file, err)) < 0)
		return r;
	if (cfg->token) {
		explicit_bzero(cfg->token, strlen(cfg->token));
		free(cfg->token);
		cfg->token = NULL;
	}
	if (cfg->token_file[0]) {
		int loose = 0;
		r = vd_config_read_token(cfg->token_file, &cfg->token, &loose, err);
		if (r < 0)
			return r;
		if (loose)
			vd_log(VD_LOG_WARN, "token_file %s is readable by group or others; "
			       "chmod 600 it", cfg->token_file);
	}
	return 0;
}
