/* main.c — volumed: flags and config, the core, the front-ends, signals.
 *
 * Threads: main blocks SIGTERM/SIGINT/SIGHUP before any thread starts and
 * waits for them with sigwait; the HTTP servers (the unix sockets, and the
 * HTTPS API on TCP when listen is set) run their own threads. A
 * clean stop closes and unlinks the sockets and leaves every mount in
 * place, so running containers keep their volumes. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../csi/grpc.h"
#include "../csi/service.h"
#include "../docker-plugin/plugin.h"
#include "api.h"
#include "config.h"
#include "core.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

struct frontend {
	const char *what;
	const char *path;
	size_t max_body;
	vd_http_handler handler;
};

static int serve(const struct frontend *fe, struct vd_core *core,
		 struct vd_http_server **ret_server)
{
	struct vd_err err = VD_ERR_INIT;
	*ret_server = NULL;
	if (!fe->path[0])
		return 0;
	int r = vd_http_listen_unix(fe->path, 0660, fe->max_body, fe->handler, core, ret_server,
				    &err);
	if (r < 0)
		vd_log(VD_LOG_ERROR, "%s socket %s: %s", fe->what, fe->path, vd_err_msg(&err));
	else
		vd_log(VD_LOG_INFO, "%s listening on %s", fe->what, fe->path);
	return r;
}

/* The REST API over HTTPS on TCP, when listen is set; every request must
 * carry the bearer token (checked by the http server before vd_api_handle). */
static int serve_tcp(const struct vd_config *cfg, struct vd_core *core,
		     struct vd_http_server **ret_server)
{
	struct vd_err err = VD_ERR_INIT;
	*ret_server = NULL;
	if (!cfg->listen[0])
		return 0;
	int r = vd_http_listen_tcp(cfg->listen, cfg->tls_cert, cfg->tls_key, cfg->token,
				   VD_API_MAX_BODY, vd_api_handle, core, ret_server, &err);
	if (r < 0)
		vd_log(VD_LOG_ERROR, "api listen %s: %s", cfg->listen, vd_err_msg(&err));
	else
		vd_log(VD_LOG_INFO, "api listening on https://%s", cfg->listen);
	return r;
}

static int serve_csi(const struct vd_config *cfg, struct vd_core *core,
		     struct vd_grpc_server **ret_server)
{
	struct vd_err err = VD_ERR_INIT;
	const char *endpoint = cfg->csi_endpoint;
	enum vd_csi_scope scope = VD_CSI_SCOPE_CLUSTER;
	size_t n;
	*ret_server = NULL;
	if (!endpoint[0])
		return 0;
	vd_csi_scope_parse(cfg->csi_controller_scope, &scope);   /* checked by config */
	struct vd_grpc_method *methods = vd_csi_methods(scope, &n);
	int r = methods ? vd_grpc_listen_unix(vd_config_endpoint_path(endpoint), methods, n, core,
					      NULL, ret_server, &err)
			: vd_err_set(&err, -ENOMEM, "out of memory");
	free(methods);
	if (r < 0)
		vd_log(VD_LOG_ERROR, "csi endpoint %s: %s", endpoint, vd_err_msg(&err));
	else
		vd_log(VD_LOG_INFO, "csi listening on %s", endpoint);
	return r;
}

static int wait_for_stop(void)
{
	sigset_t set;
	int sig = 0;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
		vd_log(VD_LOG_INFO, "SIGHUP ignored (restart to apply a new configuration)");
	return sig;
}

static void block_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int run(const struct vd_config *cfg)
{
	struct vd_err err = VD_ERR_INIT;
	struct vd_core *core = NULL;
	struct vd_core_config core_cfg = {
		.state_dir = cfg->state_dir,
		.node_id = cfg->node_id,
		.drivers = cfg->drivers,
		.default_driver = cfg->default_driver,
		.controller_url = cfg->controller_url,   /* "": the controller */
		.token = cfg->token,                     /* NULL without token_file */
		.ca_file = cfg->ca_file[0] ? cfg->ca_file : NULL,   /* NULL: system CAs */
		.lease_ms = cfg->lease_ms,
		.move_wait_ms = cfg->move_wait_ms,
	};
	double t0 = vd_now_ms();
	if (vd_core_open(&core_cfg, &core, &err) < 0) {
		vd_log(VD_LOG_ERROR, "cannot start: %s", vd_err_msg(&err));
		return 1;
	}
	vd_log(VD_LOG_INFO, "volumed %s node=%s state=%s ready in %.1f ms", VD_VERSION,
	       cfg->node_id, cfg->state_dir, vd_now_ms() - t0);
	const struct frontend frontends[] = {
		{ "docker plugin", cfg->docker_socket, VD_PLUGIN_MAX_BODY, vd_plugin_handle },
		{ "api", cfg->api_socket, VD_API_MAX_BODY, vd_api_handle },
	};
	struct vd_http_server *servers[3] = { NULL, NULL, NULL };
	struct vd_grpc_server *csi = NULL;
	int rc = 1;
	if (serve(&frontends[0], core, &servers[0]) == 0 &&
	    serve(&frontends[1], core, &servers[1]) == 0 &&
	    serve_tcp(cfg, core, &servers[2]) == 0 &&
	    serve_csi(cfg, core, &csi) == 0) {
		int sig = wait_for_stop();
		vd_log(VD_LOG_INFO, "stopping on %s; mounts stay in place", strsignal(sig));
		rc = 0;
	}
	vd_grpc_stop(csi);
	vd_http_stop(servers[0]);
	vd_http_stop(servers[1]);
	vd_http_stop(servers[2]);
	vd_core_free(core);
	vd_log(VD_LOG_INFO, "stopped");
	return rc;
}

/* mkfs lives in the sbin directories, which a service's PATH may lack. */
static void path_add_sbin(void)
{
	const char *path = getenv("PATH");
	char buf[4096];
	if (path && strstr(path, "/usr/sbin"))
		return;
	snprintf(buf, sizeof(buf), "%s%s/usr/sbin:/sbin:/usr/bin:/bin", path ? path : "",
		 path && *path ? ":" : "");
	setenv("PATH", buf, 1);
}

int main(int argc, char **argv)
{
	struct vd_config cfg;
	struct vd_err err = VD_ERR_INIT;
	int r = vd_config_from_args(&cfg, argc, argv, &err);
	if (r != 0) {
		if (r < 0)
			fprintf(stderr, "volumed: %s\n", vd_err_msg(&err));
		vd_config_clear(&cfg);
		return r < 0 ? 2 : 0;
	}
	vd_log_set_level(cfg.log_level);
	vd_log_set_format(cfg.log_format);
	vd_log_set_op_observer(vd_metrics_op);
	path_add_sbin();
	block_signals();
	int rc = run(&cfg);
	vd_config_clear(&cfg);
	return rc;
}
