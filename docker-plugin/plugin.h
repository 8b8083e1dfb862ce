/* plugin.h — the Docker volume plugin protocol (/Plugin.Activate,
 * /VolumeDriver.*) translated onto the core. No storage logic here. */
#ifndef VD_PLUGIN_H
#define VD_PLUGIN_H

#include "../volumed/core.h"
#include "../volumed/http.h"

#define VD_PLUGIN_MAX_BODY (64 * 1024)

/* An http handler: userdata is the struct vd_core *. */
void vd_plugin_handle(void *core, const struct vd_http_request *req,
		      struct vd_http_response *resp);

#endif
