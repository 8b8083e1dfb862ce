/* test_cli.c — volctl's command line and text output, pure: every command
 * and option form, the usage errors and their messages, the socket choice,
 * the ls table and the status lines. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../volumed/cli.h"
#include "../../volumed/config.h"

#define ARGV(...) ((char *const[]){ "volctl", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *const[]){ "volctl", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(cli, err, ...) vd_cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), cli, err)

/* Parsing fails with -EINVAL and a message containing frag. */
#define PARSE_FAILS(frag, ...) do { \
		struct vd_cli cli_; \
		struct vd_err err_ = VD_ERR_INIT; \
		assert_int_equal(PARSE(&cli_, &err_, __VA_ARGS__), -EINVAL); \
		if (!strstr(err_.msg, frag)) \
			fail_msg("message \"%s\" lacks \"%s\"", err_.msg, frag); \
	} while (0)

static const char *opt(const struct vd_cli *cli, const char *key)
{
	return json_string_value(json_object_get(cli->opts, key));
}

static void test_help_and_version(void **state)
{
	(void)state;
	struct vd_cli cli;
	assert_int_equal(PARSE(&cli, NULL, "--help"), 0);
	assert_int_equal(cli.cmd, VD_CLI_HELP);
	assert_int_equal(PARSE(&cli, NULL, "-h"), 0);
	assert_int_equal(cli.cmd, VD_CLI_HELP);
	assert_int_equal(PARSE(&cli, NULL, "help"), 0);
	assert_int_equal(cli.cmd, VD_CLI_HELP);
	assert_int_equal(PARSE(&cli, NULL, "create", "--help"), 0);
	assert_int_equal(cli.cmd, VD_CLI_HELP);
	assert_int_equal(PARSE(&cli, NULL, "--json", "--version"), 0);
	assert_int_equal(cli.cmd, VD_CLI_VERSION);
	assert_non_null(strstr(vd_cli_usage, VD_DEFAULT_API_SOCKET));
}

static void test_create_option_forms(void **state)
{
	(void)state;
	struct vd_cli cli;
	struct vd_err err = VD_ERR_INIT;
	int r = PARSE(&cli, &err, "create", "-o", "size=1G", "v1", "-ofstype=ext4",
		      "--opt", "a=b", "--opt=c=d=e", "--driver", "local");
	if (r < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(cli.cmd, VD_CLI_CREATE);
	assert_string_equal(cli.name, "v1");
	assert_string_equal(cli.driver, "local");
	assert_int_equal(json_object_size(cli.opts), 4);
	assert_string_equal(opt(&cli, "size"), "1G");
	assert_string_equal(opt(&cli, "fstype"), "ext4");
	assert_string_equal(opt(&cli, "a"), "b");
	assert_string_equal(opt(&cli, "c"), "d=e");
	assert_false(cli.json);
	assert_null(cli.api_socket);
	vd_cli_clear(&cli);
	vd_cli_clear(&cli);   /* twice is fine */
	vd_cli_clear(NULL);

	assert_int_equal(PARSE(&cli, NULL, "create", "--driver=local", "v2"), 0);
	assert_string_equal(cli.driver, "local");
	assert_string_equal(cli.name, "v2");
	assert_null(cli.opts);
}

static void test_create_errors(void **state)
{
	(void)state;
	PARSE_FAILS("create needs a volume NAME", "create");
	PARSE_FAILS("create needs a volume NAME", "create", "-o", "a=b");
	PARSE_FAILS("unexpected argument 'b'", "create", "a", "b");
	PARSE_FAILS("option -o needs a value", "create", "a", "-o");
	PARSE_FAILS("needs a non-empty value", "create", "a", "--driver=");
	PARSE_FAILS("not key=value", "create", "a", "-o", "size");
	PARSE_FAILS("[a-z0-9_.-]", "create", "a", "-o", "Size=1G");
	PARSE_FAILS("size is given twice", "create", "a", "-o", "size=1G", "-osize=2G");
	PARSE_FAILS("unknown option --id for create", "create", "a", "--id", "x");
	PARSE_FAILS("not valid UTF-8", "create", "a", "-o", "k=\xff");
}

static void test_mount_and_others(void **state)
{
	(void)state;
	struct vd_cli cli;
	assert_int_equal(PARSE(&cli, NULL, "mount", "v", "--id", "x"), 0);
	assert_int_equal(cli.cmd, VD_CLI_MOUNT);
	assert_string_equal(cli.name, "v");
	assert_string_equal(cli.mount_id, "x");
	assert_int_equal(PARSE(&cli, NULL, "unmount", "--id=y", "v"), 0);
	assert_int_equal(cli.cmd, VD_CLI_UNMOUNT);
	assert_string_equal(cli.mount_id, "y");
	assert_int_equal(PARSE(&cli, NULL, "mount", "v"), 0);
	assert_null(cli.mount_id);
	assert_int_equal(PARSE(&cli, NULL, "inspect", "v"), 0);
	assert_int_equal(cli.cmd, VD_CLI_INSPECT);
	assert_int_equal(PARSE(&cli, NULL, "rm", "--", "-v"), 0);
	assert_int_equal(cli.cmd, VD_CLI_RM);
	assert_string_equal(cli.name, "-v");
	assert_int_equal(PARSE(&cli, NULL, "ls"), 0);
	assert_int_equal(cli.cmd, VD_CLI_LS);
	assert_null(cli.name);
	assert_int_equal(PARSE(&cli, NULL, "status"), 0);
	assert_int_equal(cli.cmd, VD_CLI_STATUS);

	PARSE_FAILS("unexpected argument 'x'; usage: volctl ls", "ls", "x");
	PARSE_FAILS("unknown option -o for mount", "mount", "v", "-o", "a=b");
	PARSE_FAILS("option --id needs a value", "unmount", "v", "--id");
	PARSE_FAILS("rm needs a volume NAME", "rm");
	PARSE_FAILS("unexpected argument 'x'", "help", "x");
}

static void test_global_options(void **state)
{
	(void)state;
	struct vd_cli cli;
	assert_int_equal(PARSE(&cli, NULL, "--api-socket", "/s", "--json", "ls"), 0);
	assert_string_equal(cli.api_socket, "/s");
	assert_true(cli.json);
	assert_int_equal(cli.cmd, VD_CLI_LS);
	assert_int_equal(PARSE(&cli, NULL, "--api-socket=/t", "--", "status"), 0);
	assert_string_equal(cli.api_socket, "/t");
	assert_int_equal(cli.cmd, VD_CLI_STATUS);

	PARSE_FAILS("no command given", "--json");
	PARSE_FAILS("unknown command ''; commands: create", "");
	PARSE_FAILS("unknown command 'list'; commands: create, ls", "list");
	PARSE_FAILS("unknown option --jsn; global options", "--jsn", "ls");
	PARSE_FAILS("option --api-socket needs a value", "--api-socket");
	PARSE_FAILS("needs a non-empty value", "--api-socket=", "ls");
	PARSE_FAILS("global option --json goes before the command, as in: volctl --json ls",
		    "ls", "--json");
	PARSE_FAILS("global option --api-socket=/x goes before", "status", "--api-socket=/x");
	{
		struct vd_cli empty;
		char *const none[] = { "volctl", NULL };
		struct vd_err err = VD_ERR_INIT;
		assert_int_equal(vd_cli_parse(1, none, &empty, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "no command"));
	}
}

static void test_api_socket_choice(void **state)
{
	(void)state;
	struct vd_cli cli = { .api_socket = NULL };
	assert_string_equal(vd_cli_api_socket(&cli, NULL), VD_DEFAULT_API_SOCKET);
	assert_string_equal(vd_cli_api_socket(&cli, ""), VD_DEFAULT_API_SOCKET);
	assert_string_equal(vd_cli_api_socket(&cli, "/env.sock"), "/env.sock");
	cli.api_socket = "/flag.sock";
	assert_string_equal(vd_cli_api_socket(&cli, "/env.sock"), "/flag.sock");
}

static void test_url_options(void **state)
{
	(void)state;
	struct vd_cli cli;
	assert_int_equal(PARSE(&cli, NULL, "--url", "https://h:1", "--token-file", "/t",
			       "--ca-file=/ca", "--json", "ls"), 0);
	assert_string_equal(cli.url, "https://h:1");
	assert_string_equal(cli.token_file, "/t");
	assert_string_equal(cli.ca_file, "/ca");
	assert_null(cli.api_socket);
	assert_int_equal(cli.cmd, VD_CLI_LS);
	PARSE_FAILS("option --url needs a value", "--url");
	PARSE_FAILS("option --token-file needs a non-empty value", "--token-file=", "ls");
	PARSE_FAILS("global option --url=https://h:1 goes before the command", "ls",
		    "--url=https://h:1");
	PARSE_FAILS("global option --token-file goes before", "status", "--token-file", "/t");
	PARSE_FAILS("--url URL, --token-file FILE, --ca-file FILE", "--urls", "ls");
	assert_non_null(strstr(vd_cli_usage, "--url"));
	assert_non_null(strstr(vd_cli_usage, "VOLCTL_TOKEN_FILE"));
}

/* vd_cli_target of cli and env fails with -EINVAL and frag. */
static void expect_target_fails(const struct vd_cli *cli, const struct vd_cli_env *env,
				const char *frag)
{
	struct vd_cli_target t;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_cli_target(cli, env, &t, &err), -EINVAL);
	if (!strstr(err.msg, frag))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, frag);
}

static void test_target(void **state)
{
	(void)state;
	struct vd_cli_target t;
	struct vd_err err = VD_ERR_INIT;
	struct vd_cli cli = { 0 };
	struct vd_cli_env env = { 0 };

	/* Nothing: the default socket; NULL env too. */
	assert_int_equal(vd_cli_target(&cli, NULL, &t, &err), 0);
	assert_string_equal(t.unix_socket, VD_DEFAULT_API_SOCKET);
	assert_string_equal(t.url, "");
	/* VOLCTL_URL over VOLCTL_API_SOCKET; "" counts as unset. */
	env = (struct vd_cli_env){ .api_socket = "/env.sock", .url = "", .token_file = "" };
	assert_int_equal(vd_cli_target(&cli, &env, &t, &err), 0);
	assert_string_equal(t.unix_socket, "/env.sock");
	env = (struct vd_cli_env){ .api_socket = "/env.sock", .url = "https://env:1/",
				   .token_file = "/env-token", .ca_file = "/env-ca" };
	assert_int_equal(vd_cli_target(&cli, &env, &t, &err), 0);
	assert_null(t.unix_socket);
	assert_string_equal(t.url, "https://env:1");   /* trailing '/' dropped */
	assert_string_equal(t.token_file, "/env-token");
	assert_string_equal(t.ca_file, "/env-ca");
	/* A flag beats the environment: --api-socket over VOLCTL_URL. */
	cli.api_socket = "/flag.sock";
	assert_int_equal(vd_cli_target(&cli, &env, &t, &err), 0);
	assert_string_equal(t.unix_socket, "/flag.sock");
	/* --url, --token-file and --ca-file over theirs. */
	cli = (struct vd_cli){ .url = "https://[::1]:8443", .token_file = "/t", .ca_file = "/c" };
	assert_int_equal(vd_cli_target(&cli, &env, &t, &err), 0);
	assert_string_equal(t.url, "https://[::1]:8443");
	assert_string_equal(t.token_file, "/t");
	assert_string_equal(t.ca_file, "/c");
	cli = (struct vd_cli){ .url = "https://h:1" };
	env = (struct vd_cli_env){ 0 };
	expect_target_fails(&cli, &env, "--url https://h:1 needs --token-file FILE");
	cli.token_file = "/t";
	assert_int_equal(vd_cli_target(&cli, &env, &t, &err), 0);
	assert_null(t.ca_file);   /* the system's CAs */

	cli = (struct vd_cli){ .url = "https://h:1", .api_socket = "/s", .token_file = "/t" };
	expect_target_fails(&cli, &env, "--url or --api-socket, not both");
	cli = (struct vd_cli){ .url = "http://h:1", .token_file = "/t" };
	expect_target_fails(&cli, &env, "https:// only");
	cli = (struct vd_cli){ .url = "h:1", .token_file = "/t" };
	expect_target_fails(&cli, &env, "expected https://HOST:PORT");
	cli = (struct vd_cli){ .url = "https://h:1/v1", .token_file = "/t" };
	expect_target_fails(&cli, &env, "without a path");
	cli = (struct vd_cli){ .url = "https://", .token_file = "/t" };
	expect_target_fails(&cli, &env, "https://HOST:PORT");
	cli = (struct vd_cli){ .token_file = "/t" };
	expect_target_fails(&cli, &env, "--token-file is for --url");
	cli = (struct vd_cli){ .ca_file = "/c" };
	expect_target_fails(&cli, &env, "--ca-file is for --url");
	env = (struct vd_cli_env){ .url = "http://e:1" };
	cli = (struct vd_cli){ .token_file = "/t" };
	expect_target_fails(&cli, &env, "VOLCTL_URL http://e:1");
}

static void test_format_list(void **state)
{
	(void)state;
	json_t *reply = json_loads(
		"{\"volumes\": ["
		" {\"name\": \"alpha\", \"driver\": \"local\", \"mountpoint\": \"/m/alpha\","
		"  \"status\": {\"type\": \"image\", \"fstype\": \"ext4\", \"size\": \"64Mi\","
		"   \"refs\": 2, \"mounted\": true}},"
		" {\"name\": \"b\", \"driver\": \"local\", \"mountpoint\": \"/m/b\","
		"  \"status\": {\"size_bytes\": 1073741824, \"refs\": 0, \"mounted\": false}},"
		" {\"name\": \"dir\", \"driver\": \"local\", \"mountpoint\": \"/m/dir\","
		"  \"status\": {\"type\": \"directory\"}},"
		" {\"name\": \"c\"}"
		"]}", 0, NULL);
	assert_non_null(reply);
	char *text = vd_cli_format_list(reply);
	assert_non_null(text);
	assert_string_equal(text,
		"NAME   DRIVER  TYPE       SIZE  REFS  MOUNTPOINT\n"
		"alpha  local   ext4       64Mi  2     /m/alpha\n"
		"b      local   -          1Gi   0     -\n"
		"dir    local   directory  -     -     /m/dir\n"
		"c      -       -          -     -     -\n");
	free(text);
	json_decref(reply);

	reply = json_pack("{s:[]}", "volumes");
	text = vd_cli_format_list(reply);
	assert_string_equal(text, "NAME  DRIVER  TYPE  SIZE  REFS  MOUNTPOINT\n");
	free(text);
	json_decref(reply);
}

static void test_format_status(void **state)
{
	(void)state;
	json_t *status = json_loads("{\"version\": \"0.1.0\", \"node_id\": \"n1\", "
				    "\"volumes\": 3, \"drivers\": [\"local\", \"nfs\"], "
				    "\"ok\": true, \"extra\": {\"a\": 1}, \"none\": null}", 0, NULL);
	assert_non_null(status);
	char *text = vd_cli_format_status(status);
	assert_non_null(text);
	assert_string_equal(text,
		"version: 0.1.0\n"
		"node_id: n1\n"
		"volumes: 3\n"
		"drivers: local, nfs\n"
		"ok:      true\n"
		"extra:   {\"a\":1}\n"
		"none:    null\n");
	free(text);
	json_decref(status);

	status = json_object();
	text = vd_cli_format_status(status);
	assert_string_equal(text, "");
	free(text);
	json_decref(status);
}

/* --quiet/-q before the command; after it, it is a misplaced global option. */
static void test_quiet(void **state)
{
	(void)state;
	struct vd_cli cli;
	assert_int_equal(PARSE(&cli, NULL, "ls"), 0);
	assert_false(cli.quiet);
	assert_int_equal(PARSE(&cli, NULL, "--quiet", "mount", "m1"), 0);
	assert_true(cli.quiet);
	assert_false(cli.json);
	assert_int_equal(PARSE(&cli, NULL, "-q", "--json", "rm", "m1"), 0);
	assert_true(cli.quiet);
	assert_true(cli.json);
	PARSE_FAILS("goes before the command", "mount", "m1", "--quiet");
	PARSE_FAILS("goes before the command", "mount", "m1", "-q");
}

static void expect_label(const char *want, int argc, char *const *argv)
{
	struct vd_cli cli;
	char label[128] = "untouched";
	assert_int_equal(vd_cli_parse(argc, argv, &cli, NULL), 0);
	bool shown = vd_cli_progress_label(&cli, label, sizeof(label));
	if (want)
		assert_string_equal(label, want);
	else
		assert_false(shown);
	assert_true(!want || shown);
	vd_cli_clear(&cli);
}

#define LABEL(want, ...) expect_label(want, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

static void test_progress_label(void **state)
{
	(void)state;
	LABEL("creating web", "create", "web");
	LABEL("creating big (8Ti)", "create", "big", "-o", "size=8Ti", "-o", "fstype=ext4");
	LABEL("removing web", "rm", "web");
	LABEL("mounting m1", "--json", "mount", "m1", "--id", "a");
	LABEL("unmounting m1", "unmount", "m1");
	LABEL("moving m1 to node b (waits for it to be let go)", "move", "m1", "--to", "b");
	LABEL("moving m1 to node b, forced", "move", "m1", "--to", "b", "--force");
	LABEL(NULL, "ls");
	LABEL(NULL, "inspect", "m1");
	LABEL(NULL, "status");
	LABEL(NULL, "nodes");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_help_and_version),
		cmocka_unit_test(test_create_option_forms),
		cmocka_unit_test(test_create_errors),
		cmocka_unit_test(test_mount_and_others),
		cmocka_unit_test(test_global_options),
		cmocka_unit_test(test_api_socket_choice),
		cmocka_unit_test(test_url_options),
		cmocka_unit_test(test_target),
		cmocka_unit_test(test_format_list),
		cmocka_unit_test(test_format_status),
		cmocka_unit_test(test_quiet),
		cmocka_unit_test(test_progress_label),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
