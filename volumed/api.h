/* api.h — the REST API (volctl today, node agents <-> controller later),
 * JSON over HTTP, translated onto the core. No storage logic here.
 *
 *   GET    /metrics   the Prometheus text exposition (metrics.h)
 *   GET    /healthz   200 "ok", or 503 and why not (text/plain)
 *   GET    /v1/status
 *   GET    /v1/volumes                      -> {"volumes":[view...]}
 *   POST   /v1/volumes  {"name","driver"?,"options"?{k:v}} -> 201 view
 *   GET    /v1/volumes/NAME                 -> view
 *   DELETE /v1/volumes/NAME                 -> 204... (200 {})
 *   POST   /v1/volumes/NAME/mount   {"id"?} -> {"mountpoint"}
 *   POST   /v1/volumes/NAME/unmount {"id"?} -> {}
 * Errors: a 4xx/5xx status and {"error": "...", "kind": "..."}. */
#ifndef VD_API_H
#define VD_API_H

#include "core.h"
#include "http.h"

#define VD_API_MAX_BODY (64 * 1024)
#define VD_API_DEFAULT_MOUNT_ID "volctl"

void vd_api_handle(void *core, const struct vd_http_request *req,
		   struct vd_http_response *resp);

#endif
