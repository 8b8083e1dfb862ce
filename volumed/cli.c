/* cli.c — volctl's command line (argv into struct vd_cli) and its text
 * output (ls table, status lines). Pure: no I/O beyond building strings in
 * memory, no globals, no locks. */
#include "cli.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "names.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

const char vd_cli_usage[] =
	"Usage: volctl [--api-socket PATH] [--json] [--quiet] COMMAND [ARGS]\n"
	"       volctl --url https://HOST:PORT --token-file FILE [--ca-file FILE]\n"
	"              [--json] [--quiet] COMMAND [ARGS]\n"
	"       volctl --help | --version\n"
	"\n"
	"Commands:\n"
	"  create NAME [-o KEY=VALUE]... [--driver DRIVER]\n"
	"                          create a volume (also -oKEY=VALUE, --opt KEY=VALUE)\n"
	"  ls                      list the volumes\n"
	"  inspect NAME            show a volume as JSON\n"
	"  rm NAME                 remove a volume\n"
	"  mount NAME [--id ID]    mount a volume on this node for ID (default \""
	VD_API_DEFAULT_MOUNT_ID "\"),\n"
	"                          print its mountpoint\n"
	"  unmount NAME [--id ID]  drop ID's mount; the last one unmounts\n"
	"  status                  show the daemon's status\n"
	"  nodes                   list the cluster's nodes: state, last heartbeat,\n"
	"                          what each has attached\n"
	"  move NAME --to NODE [--force]\n"
	"                          move a volume to NODE (which mounts it); --force\n"
	"                          takes it even while in use where it is\n"
	"\n"
	"Global options (before the command):\n"
	"  --api-socket PATH  volumed's API socket (env VOLCTL_API_SOCKET,\n"
	"                     default " VD_DEFAULT_API_SOCKET ")\n"
	"  --url URL          volumed's HTTPS API instead, https://HOST:PORT\n"
	"                     (env VOLCTL_URL)\n"
	"  --token-file FILE  the API's bearer token, for --url (env VOLCTL_TOKEN_FILE)\n"
	"  --ca-file FILE     CA bundle to verify volumed's certificate, for --url\n"
	"                     (env VOLCTL_CA_FILE; default: the system's CAs)\n"
	"  --json             print the server's JSON, for scripts\n"
	"  --quiet, -q        no progress line (shown on a terminal while create, rm,\n"
	"                     mount, unmount or move take longer than 0.3 s)\n"
	"  --help, --version\n"
	"\n"
	"Exit status: 0 success, 1 failure, 2 usage error.\n";

#define GLOBAL_OPTS "--api-socket PATH, --url URL, --token-file FILE, --ca-file FILE, " \
	"--json, --quiet, --help, --version"

enum { OPT_O = 1, OPT_DRIVER = 2, OPT_ID = 4, OPT_TO = 8, OPT_FORCE = 16 };

struct command {
	const char *word;
	enum vd_cli_cmd cmd;
	bool takes_name;
	unsigned opts;       /* OPT_* it accepts */
	const char *usage;
};

static const struct command commands[] = {
	{ "create", VD_CLI_CREATE, true, OPT_O | OPT_DRIVER,
	  "create NAME [-o KEY=VALUE]... [--driver DRIVER]" },
	{ "ls", VD_CLI_LS, false, 0, "ls" },
	{ "inspect", VD_CLI_INSPECT, true, 0, "inspect NAME" },
	{ "rm", VD_CLI_RM, true, 0, "rm NAME" },
	{ "mount", VD_CLI_MOUNT, true, OPT_ID, "mount NAME [--id ID]" },
	{ "unmount", VD_CLI_UNMOUNT, true, OPT_ID, "unmount NAME [--id ID]" },
	{ "status", VD_CLI_STATUS, false, 0, "status" },
	{ "nodes", VD_CLI_NODES, false, 0, "nodes" },
	{ "move", VD_CLI_MOVE, true, OPT_TO | OPT_FORCE, "move NAME --to NODE [--force]" },
	{ "help", VD_CLI_HELP, false, 0, "help" },
};

#define COMMAND_WORDS "create, ls, inspect, rm, mount, unmount, status, nodes, move, help"

/* Matches argv[*i] against an option taking a value: "LONG VALUE",
 * "LONG=VALUE", and with a short form also "-x VALUE" and "-xVALUE".
 * 1 when matched (*ret_value set), 0 when it is another option, <0 when
 * the value is missing or empty. */
static int opt_value(int argc, char *const *argv, int *i, const char *lng, const char *shrt,
		     const char **ret_value, struct vd_err *err)
{
	const char *a = argv[*i], *v;
	size_t n = strlen(lng);
	if (strcmp(a, lng) == 0 || (shrt && strcmp(a, shrt) == 0)) {
		if (*i + 1 >= argc)
			return vd_err_set(err, -EINVAL, "option %s needs a value", a);
		v = argv[++*i];
	} else if (strncmp(a, lng, n) == 0 && a[n] == '=') {
		v = a + n + 1;
	} else if (shrt && strncmp(a, shrt, 2) == 0 && a[2]) {
		v = a + 2;
	} else {
		return 0;
	}
	if (!*v)
		return vd_err_set(err, -EINVAL, "option %s needs a non-empty value", lng);
	*ret_value = v;
	return 1;
}

static bool is_help(const char *a)
{
	return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

static bool is_quiet(const char *a)
{
	return strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0;
}

/* The global options that take a value, and where each goes. */
struct global_value_opt {
	const char *name;
	size_t offset;   /* const char * member of struct vd_cli */
};

static const struct global_value_opt global_value_opts[] = {
	{ "--api-socket", offsetof(struct vd_cli, api_socket) },
	{ "--url", offsetof(struct vd_cli, url) },
	{ "--token-file", offsetof(struct vd_cli, token_file) },
	{ "--ca-file", offsetof(struct vd_cli, ca_file) },
};

static bool is_global_opt(const char *a)
{
	if (strcmp(a, "--json") == 0 || strcmp(a, "--version") == 0 || is_quiet(a))
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(global_value_opts); i++) {
		size_t n = strlen(global_value_opts[i].name);
		if (strncmp(a, global_value_opts[i].name, n) == 0 && (a[n] == '\0' || a[n] == '='))
			return true;
	}
	return false;
}

/* Adds one -o KEY=VALUE to cli->opts; each key at most once. */
static int opt_add(struct vd_cli *cli, const char *pair, struct vd_err *err)
{
	char key[128], value[4096];
	int r = vd_opt_pair_parse(pair, key, sizeof(key), value, sizeof(value), err);
	if (r < 0)
		return r;
	if (!cli->opts && !(cli->opts = json_object()))
		return vd_err_set(err, -ENOMEM, "out of memory");
	if (json_object_get(cli->opts, key))
		return vd_err_set(err, -EINVAL, "option %s is given twice; give each option once",
				  key);
	json_t *v = json_string(value);
	if (!v)
		return vd_err_set(err, -EINVAL, "option %s: the value is not valid UTF-8", key);
	if (json_object_set_new(cli->opts, key, v) < 0)
		return vd_err_set(err, -ENOMEM, "out of memory");
	return 0;
}

/* One '-' argument after the command: 1 consumed, <0 error. */
static int command_opt(const struct command *cmd, int argc, char *const *argv, int *i,
		       struct vd_cli *cli, struct vd_err *err)
{
	const char *a = argv[*i], *v = NULL;
	int r = 0;
	if ((cmd->opts & OPT_O) &&
	    (r = opt_value(argc, argv, i, "--opt", "-o", &v, err)) != 0) {
		if (r > 0)
			r = opt_add(cli, v, err);
		return r < 0 ? r : 1;
	}
	if ((cmd->opts & OPT_DRIVER) &&
	    (r = opt_value(argc, argv, i, "--driver", NULL, &cli->driver, err)) != 0)
		return r;
	if ((cmd->opts & OPT_ID) &&
	    (r = opt_value(argc, argv, i, "--id", NULL, &cli->mount_id, err)) != 0)
		return r;
	if ((cmd->opts & OPT_TO) &&
	    (r = opt_value(argc, argv, i, "--to", NULL, &cli->to, err)) != 0)
		return r;
	if ((cmd->opts & OPT_FORCE) && strcmp(a, "--force") == 0) {
		cli->force = true;
		return 1;
	}
	if (is_global_opt(a))
		return vd_err_set(err, -EINVAL, "global option %s goes before the command, "
				  "as in: volctl %s %s", a, a, cmd->word);
	return vd_err_set(err, -EINVAL, "unknown option %s for %s; usage: volctl %s",
			  a, cmd->word, cmd->usage);
}

/* Everything after the command word. */
static int command_args(const struct command *cmd, int argc, char *const *argv, int i,
			struct vd_cli *cli, struct vd_err *err)
{
	bool options_done = false;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!options_done && strcmp(a, "--") == 0) {
			options_done = true;
		} else if (!options_done && is_help(a)) {
			cli->cmd = VD_CLI_HELP;
			return 0;
		} else if (!options_done && a[0] == '-' && a[1]) {
			int r = command_opt(cmd, argc, argv, &i, cli, err);
			if (r < 0)
				return r;
		} else if (cmd->takes_name && !cli->name) {
			cli->name = a;
		} else {
			return vd_err_set(err, -EINVAL, "unexpected argument '%.64s'; usage: "
					  "volctl %s", a, cmd->usage);
		}
	}
	if (cmd->takes_name && !cli->name)
		return vd_err_set(err, -EINVAL, "%s needs a volume NAME; usage: volctl %s",
				  cmd->word, cmd->usage);
	if ((cmd->opts & OPT_TO) && !cli->to)
		return vd_err_set(err, -EINVAL, "%s needs --to NODE; usage: volctl %s", cmd->word,
				  cmd->usage);
	return 0;
}

/* The options before the command; returns the index of the command word,
 * or argc when --help/--version ended the parse (cli->cmd set). */
static int global_opts(int argc, char *const *argv, struct vd_cli *cli, struct vd_err *err)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		int r;
		if (strcmp(a, "--") == 0)
			return i + 1;
		if (is_help(a) || strcmp(a, "--version") == 0) {
			cli->cmd = is_help(a) ? VD_CLI_HELP : VD_CLI_VERSION;
			return argc;
		}
		if (strcmp(a, "--json") == 0) {
			cli->json = true;
			continue;
		}
		if (is_quiet(a)) {
			cli->quiet = true;
			continue;
		}
		r = 0;
		for (size_t k = 0; r == 0 && k < ARRAY_SIZE(global_value_opts); k++)
			r = opt_value(argc, argv, &i, global_value_opts[k].name, NULL,
				      (const char **)(void *)((char *)cli + global_value_opts[k].offset),
				      err);
		if (r < 0)
			return r;
		if (r == 0)
			return vd_err_set(err, -EINVAL, "unknown option %s; global options (before "
					  "the command): " GLOBAL_OPTS, a);
	}
	if (i >= argc)
		return vd_err_set(err, -EINVAL, "no command given; commands: " COMMAND_WORDS);
	return i;
}

static const struct command *command_find(const char *word)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].word, word) == 0)
			return &commands[i];
	return NULL;
}

static int cli_parse(int argc, char *const *argv, struct vd_cli *cli, struct vd_err *err)
{
	cli->cmd = VD_CLI_HELP;
	int i = global_opts(argc, argv, cli, err);
	if (i < 0 || i >= argc)
		return i < 0 ? i : 0;
	const struct command *cmd = command_find(argv[i]);
	if (!cmd)
		return vd_err_set(err, -EINVAL, "unknown command '%.64s'; commands: "
				  COMMAND_WORDS, argv[i]);
	cli->cmd = cmd->cmd;
	return command_args(cmd, argc, argv, i + 1, cli, err);
}

int vd_cli_parse(int argc, char *const *argv, struct vd_cli *ret_cli, struct vd_err *err)
{
	struct vd_cli cli = { 0 };
	int r = cli_parse(argc, argv, &cli, err);
	if (r < 0) {
		vd_cli_clear(&cli);
		return r;
	}
	*ret_cli = cli;
	return 0;
}

void vd_cli_clear(struct vd_cli *cli)
{
	if (!cli)
		return;
	json_decref(cli->opts);
	cli->opts = NULL;
}

const char *vd_cli_api_socket(const struct vd_cli *cli, const char *env)
{
	if (cli->api_socket)
		return cli->api_socket;
	return env && *env ? env : VD_DEFAULT_API_SOCKET;
}

static const char *env_value(const char *v)
{
	return v && *v ? v : NULL;
}

/* https://HOST:PORT (a trailing '/' dropped) into ret (len bytes). */
static int url_check(const char *origin, const char *url, char *ret, size_t len,
		     struct vd_err *err)
{
	static const char https[] = "https://";
	if (strncmp(url, "http://", 7) == 0)
		return vd_err_set(err, -EINVAL, "%s %.200s: plain http:// is not served; volumed's "
				  "API over TCP is https:// only, so that the token is never "
				  "sent unencrypted", origin, url);
	size_t n = strlen(url);
	if (strncmp(url, https, sizeof(https) - 1) != 0 || n >= len)
		return vd_err_set(err, -EINVAL, "%s %.200s: expected https://HOST:PORT", origin,
				  url);
	memcpy(ret, url, n + 1);
	if (n > sizeof(https) - 1 && ret[n - 1] == '/')
		ret[--n] = '\0';
	const char *hostport = ret + sizeof(https) - 1;
	if (!*hostport || strpbrk(hostport, "/?#@ "))
		return vd_err_set(err, -EINVAL, "%s %.200s: expected https://HOST:PORT, without "
				  "a path", origin, url);
	return 0;
}

int vd_cli_target(const struct vd_cli *cli, const struct vd_cli_env *env,
		  struct vd_cli_target *ret_target, struct vd_err *err)
{
	struct vd_cli_target t = { 0 };
	const struct vd_cli_env none = { 0 };
	if (!env)
		env = &none;
	if (cli->url && cli->api_socket)
		return vd_err_set(err, -EINVAL, "give --url or --api-socket, not both");
	const char *url = cli->url ? cli->url : cli->api_socket ? NULL : env_value(env->url);
	if (!url) {
		if (cli->token_file || cli->ca_file)
			return vd_err_set(err, -EINVAL, "%s is for --url (HTTPS); the unix socket "
					  "needs none", cli->token_file ? "--token-file" : "--ca-file");
		t.unix_socket = vd_cli_api_socket(cli, env->api_socket);
		*ret_target = t;
		return 0;
	}
	const char *origin = cli->url ? "--url" : "VOLCTL_URL";
	int r = url_check(origin, url, t.url, sizeof(t.url), err);
	if (r < 0)
		return r;
	t.token_file = cli->token_file ? cli->token_file : env_value(env->token_file);
	t.ca_file = cli->ca_file ? cli->ca_file : env_value(env->ca_file);
	if (!t.token_file)
		return vd_err_set(err, -EINVAL, "%s %.200s needs --token-file FILE (or "
				  "VOLCTL_TOKEN_FILE): volumed's HTTPS API requires its bearer "
				  "token", origin, url);
	*ret_target = t;
	return 0;
}

bool vd_cli_progress_label(const struct vd_cli *cli, char *buf, size_t len)
{
	const char *size = json_string_value(json_object_get(cli->opts, "size"));
	switch (cli->cmd) {
	case VD_CLI_CREATE:
		snprintf(buf, len, "creating %s%s%s%s", cli->name, size ? " (" : "",
			 size ? size : "", size ? ")" : "");
		return true;
	case VD_CLI_RM:
		snprintf(buf, len, "removing %s", cli->name);
		return true;
	case VD_CLI_MOUNT:
		snprintf(buf, len, "mounting %s", cli->name);
		return true;
	case VD_CLI_UNMOUNT:
		snprintf(buf, len, "unmounting %s", cli->name);
		return true;
	case VD_CLI_MOVE:
		snprintf(buf, len, "moving %s to node %s%s", cli->name, cli->to,
			 cli->force ? ", forced" : " (waits for it to be let go)");
		return true;
	default:
		return false;
	}
}

/* ---- output ---- */

#define LS_COLS 6
#define LS_CELL_MAX 4096

static const char *const ls_headers[LS_COLS] = {
	"NAME", "DRIVER", "TYPE", "SIZE", "REFS", "MOUNTPOINT",
};

/* The first of the values that is a non-empty string, else "-". */
static void cell_string(char *cell, const json_t *v, const json_t *fallback)
{
	const char *s = json_string_value(v);
	if (!s || !*s)
		s = json_string_value(fallback);
	snprintf(cell, LS_CELL_MAX, "%s", s && *s ? s : "-");
}

static void cell_size(char *cell, const json_t *status)
{
	json_int_t bytes = json_integer_value(json_object_get(status, "size_bytes"));
	if (!json_string_value(json_object_get(status, "size")) && bytes > 0)
		vd_size_format((uint64_t)bytes, cell, LS_CELL_MAX);
	else
		cell_string(cell, json_object_get(status, "size"), NULL);
}

/* A row: TYPE is the filesystem, else the driver's type ("directory");
 * MOUNTPOINT only while mounted here. */
static void view_cells(const json_t *view, char cells[LS_COLS][LS_CELL_MAX])
{
	const json_t *status = json_object_get(view, "status");
	const json_t *refs = json_object_get(status, "refs");
	bool unmounted = json_is_false(json_object_get(status, "mounted"));
	cell_string(cells[0], json_object_get(view, "name"), NULL);
	cell_string(cells[1], json_object_get(view, "driver"), NULL);
	cell_string(cells[2], json_object_get(status, "fstype"), json_object_get(status, "type"));
	cell_size(cells[3], status);
	if (json_is_integer(refs))
		snprintf(cells[4], LS_CELL_MAX, "%" JSON_INTEGER_FORMAT, json_integer_value(refs));
	else
		snprintf(cells[4], LS_CELL_MAX, "-");
	cell_string(cells[5], unmounted ? NULL : json_object_get(view, "mountpoint"), NULL);
}

static void row_print(FILE *f, const char *const *cells, const size_t *widths)
{
	for (int c = 0; c < LS_COLS - 1; c++)
		fprintf(f, "%-*s  ", (int)widths[c], cells[c]);
	fprintf(f, "%s\n", cells[LS_COLS - 1]);
}

/* Closes the in-memory stream (which sets *buf); its text, or NULL when
 * it failed. */
static char *stream_finish(FILE *f, char **buf)
{
	int bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		free(*buf);
		return NULL;
	}
	return *buf;
}

char *vd_cli_format_list(const json_t *reply)
{
	char cells[LS_COLS][LS_CELL_MAX];
	const json_t *views = json_object_get(reply, "volumes");
	const json_t *view;
	size_t widths[LS_COLS], idx;
	for (int c = 0; c < LS_COLS; c++)
		widths[c] = strlen(ls_headers[c]);
	json_array_foreach(views, idx, view) {
		view_cells(view, cells);
		for (int c = 0; c < LS_COLS; c++)
			if (strlen(cells[c]) > widths[c])
				widths[c] = strlen(cells[c]);
	}
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	row_print(f, ls_headers, widths);
	json_array_foreach(views, idx, view) {
		const char *row[LS_COLS];
		view_cells(view, cells);
		for (int c = 0; c < LS_COLS; c++)
			row[c] = cells[c];
		row_print(f, row, widths);
	}
	return stream_finish(f, &buf);
}

/* A status value as text: strings bare, arrays joined by ", ", the rest JSON. */
static void value_print(FILE *f, const json_t *v)
{
	if (json_is_string(v)) {
		fputs(json_string_value(v), f);
	} else if (json_is_array(v)) {
		size_t i;
		const json_t *e;
		json_array_foreach(v, i, e) {
			fputs(i ? ", " : "", f);
			value_print(f, e);
		}
	} else {
		json_dumpf(v, f, JSON_COMPACT | JSON_ENCODE_ANY);
	}
}

char *vd_cli_format_status(const json_t *status)
{
	const char *key;
	json_t *v;
	size_t width = 0;
	json_object_foreach((json_t *)status, key, v)
		if (strlen(key) > width)
			width = strlen(key);
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	json_object_foreach((json_t *)status, key, v) {
		fprintf(f, "%s:%*s", key, (int)(width - strlen(key) + 1), "");
		value_print(f, v);
		fputc('\n', f);
	}
	return stream_finish(f, &buf);
}

/* One node's row: id, state, "1.2s ago", attached volumes joined by ','. */
static void node_row(const json_t *node, char *out, size_t len, int id_width)
{
	char attached[1024] = "";
	size_t i, used = 0;
	json_t *v;
	json_array_foreach(json_object_get(node, "attached"), i, v) {
		int n = snprintf(attached + used, sizeof(attached) - used, "%s%s", i ? "," : "",
				 json_string_value(v) ? json_string_value(v) : "?");
		if (n < 0 || (size_t)n >= sizeof(attached) - used)
			break;
		used += (size_t)n;
	}
	const char *id = json_string_value(json_object_get(node, "id"));
	const char *state = json_string_value(json_object_get(node, "state"));
	double ago = (double)json_integer_value(json_object_get(node, "last_heartbeat_ms")) / 1000;
	snprintf(out, len, "%-*s  %-7s  %7.1fs ago  %s\n", id_width, id ? id : "?",
		 state ? state : "?", ago, used ? attached : "-");
}

char *vd_cli_format_nodes(const json_t *reply)
{
	const json_t *nodes = json_object_get(reply, "nodes"), *node;
	size_t i;
	int width = 4;
	json_array_foreach(nodes, i, node) {
		const char *id = json_string_value(json_object_get(node, "id"));
		if (id && (int)strlen(id) > width)
			width = (int)strlen(id);
	}
	char *buf = NULL, row[2048];
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	fprintf(f, "%-*s  %-7s  %12s  %s\n", width, "NODE", "STATE", "HEARTBEAT", "ATTACHED");
	json_array_foreach(nodes, i, node) {
		node_row(node, row, sizeof(row), width);
		fputs(row, f);
	}
	return stream_finish(f, &buf);
}
