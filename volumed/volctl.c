/* volctl.c — the command-line client of volumed's REST API: parses argv
 * (cli.c), makes one API call (apiclient.c) over the unix socket, or over
 * HTTPS with the bearer token read from --token-file, and prints the answer.
 *
 * On a terminal, a slow call shows a progress line (progress.c, its own
 * thread); otherwise single-threaded. Exit status: 0 success, 1 failure
 * (one line "volctl: <reason>" on stderr), 2 usage error (the reason, then
 * usage). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apiclient.h"
#include "cli.h"
#include "core.h"
#include "names.h"
#include "progress.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static int move(struct vd_api_client *c, const struct vd_cli *cli, json_t **ret_reply,
		struct vd_err *err)
{
	char path[512];
	json_t *body = json_pack("{s:s, s:b}", "to", cli->to, "force", cli->force);
	int r = vd_name_check(cli->name, err);
	if (r == 0 && (r = vd_name_check(cli->to, err)) < 0)
		vd_err_prefix(err, "--to");
	snprintf(path, sizeof(path), "/v1/volumes/%s/move", cli->name);
	if (r == 0)
		r = vd_api_request(c, "POST", path, body, ret_reply, err);
	json_decref(body);
	return r;
}

/* The one API call of the command; *ret_reply is the server's document. */
static int call_one(struct vd_api_client *c, const struct vd_cli *cli, json_t **ret_reply,
		    struct vd_err *err)
{
	switch (cli->cmd) {
	case VD_CLI_CREATE:
		return vd_api_create(c, cli->name, cli->driver, cli->opts, ret_reply, err);
	case VD_CLI_LS:
		return vd_api_list(c, ret_reply, err);
	case VD_CLI_INSPECT:
		return vd_api_inspect(c, cli->name, ret_reply, err);
	case VD_CLI_RM:
		return vd_api_remove(c, cli->name, ret_reply, err);
	case VD_CLI_MOUNT:
		return vd_api_mount(c, cli->name, cli->mount_id, ret_reply, err);
	case VD_CLI_UNMOUNT:
		return vd_api_unmount(c, cli->name, cli->mount_id, ret_reply, err);
	case VD_CLI_STATUS:
		return vd_api_status(c, ret_reply, err);
	case VD_CLI_NODES:
		return vd_api_request(c, "GET", "/v1/nodes", NULL, ret_reply, err);
	case VD_CLI_MOVE:
		return move(c, cli, ret_reply, err);
	default:
		return vd_err_set(err, -EINVAL, "no API call for this command");
	}
}

/* call_one, with the progress line on a terminal while it takes long. */
static int call(struct vd_api_client *c, const struct vd_cli *cli, json_t **ret_reply,
		struct vd_err *err)
{
	char label[VD_PROGRESS_LABEL_MAX + 1];
	struct vd_progress *p = NULL;
	if (vd_progress_wanted(isatty(STDERR_FILENO), cli->quiet, cli->json) &&
	    vd_cli_progress_label(cli, label, sizeof(label)))
		p = vd_progress_start(STDERR_FILENO, label);
	int r = call_one(c, cli, ret_reply, err);
	vd_progress_stop(p);
	return r;
}

/* Prints the answer: JSON for --json and inspect, else the human form. */
static int print_reply(const struct vd_cli *cli, const json_t *reply, struct vd_err *err)
{
	char *text = NULL;
	if (cli->json || cli->cmd == VD_CLI_INSPECT) {
		json_dumpf(reply, stdout, JSON_INDENT(2));
		putchar('\n');
		return 0;
	}
	switch (cli->cmd) {
	case VD_CLI_LS:
		text = vd_cli_format_list(reply);
		break;
	case VD_CLI_STATUS:
		text = vd_cli_format_status(reply);
		break;
	case VD_CLI_NODES:
		text = vd_cli_format_nodes(reply);
		break;
	case VD_CLI_MOUNT: {
		const char *mp = json_string_value(json_object_get(reply, "mountpoint"));
		if (!mp)
			return vd_err_set(err, -EPROTO, "volumed answered the mount without a "
					  "mountpoint");
		puts(mp);
		return 0;
	}
	default:   /* create, rm, unmount: the volume, as docker does */
		puts(cli->name);
		return 0;
	}
	if (!text)
		return vd_err_set(err, -ENOMEM, "out of memory formatting the answer");
	fputs(text, stdout);
	free(text);
	return 0;
}

#define TOKEN_FILE_MAX 4096

/* The bearer token: the file's one line, trailing newlines dropped. The
 * token itself never appears in a message. */
static int token_read(const char *path, char *buf, size_t size, struct vd_err *err)
{
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return vd_err_set(err, -errno, "token file %s: %s", path, strerror(errno));
	while (len < size) {
		ssize_t n = read(fd, buf + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			return vd_err_set(err, -e, "token file %s: %s", path, strerror(e));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len >= size)
		return vd_err_set(err, -EINVAL, "token file %s: larger than %zu bytes", path,
				  size - 1);
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	if (!len)
		return vd_err_set(err, -EINVAL, "token file %s is empty", path);
	if (strpbrk(buf, "\r\n"))
		return vd_err_set(err, -EINVAL, "token file %s: the token must be one line", path);
	return 0;
}

static int run(const struct vd_cli *cli, const struct vd_cli_target *target,
	       struct vd_err *err)
{
	char token[TOKEN_FILE_MAX + 1];
	struct vd_api_client_config cfg = {
		.unix_socket = target->unix_socket,
		.base_url = target->url[0] ? target->url : NULL,
		.ca_file = target->ca_file,
	};
	struct vd_api_client *client = NULL;
	json_t *reply = NULL;
	int rc = 0;
	if (target->url[0]) {
		rc = token_read(target->token_file, token, sizeof(token), err);
		cfg.bearer_token = token;
	}
	if (rc == 0)
		rc = vd_api_client_new(&cfg, &client, err);
	explicit_bzero(token, sizeof(token));   /* the client has its copy */
	if (rc == 0)
		rc = call(client, cli, &reply, err);
	if (rc == 0)
		rc = print_reply(cli, reply, err);
	if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
		rc = vd_err_set(err, -EIO, "cannot write the output: %s", strerror(errno));
	json_decref(reply);
	vd_api_client_free(client);
	return rc;
}

int main(int argc, char **argv)
{
	struct vd_err err = VD_ERR_INIT;
	struct vd_cli cli;
	struct vd_cli_target target;
	const struct vd_cli_env env = {
		.api_socket = getenv("VOLCTL_API_SOCKET"),
		.url = getenv("VOLCTL_URL"),
		.token_file = getenv("VOLCTL_TOKEN_FILE"),
		.ca_file = getenv("VOLCTL_CA_FILE"),
	};
	if (vd_cli_parse(argc, argv, &cli, &err) < 0) {
		fprintf(stderr, "volctl: %s\n\n%s", vd_err_msg(&err), vd_cli_usage);
		return EXIT_USAGE;
	}
	int status = EXIT_OK;
	if (cli.cmd == VD_CLI_HELP)
		fputs(vd_cli_usage, stdout);
	else if (cli.cmd == VD_CLI_VERSION)
		printf("volctl %s\n", VD_VERSION);
	else if (vd_cli_target(&cli, &env, &target, &err) < 0) {
		fprintf(stderr, "volctl: %s\n\n%s", vd_err_msg(&err), vd_cli_usage);
		status = EXIT_USAGE;
	} else if (run(&cli, &target, &err) < 0) {
		fprintf(stderr, "volctl: %s\n", vd_err_msg(&err));
		status = EXIT_FAIL;
	}
	vd_cli_clear(&cli);
	return status;
}
