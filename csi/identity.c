/* identity.c — the CSI Identity service: who the plugin is and what it
 * offers. Stateless. */
#include "service.h"

#include "google/protobuf/wrappers.pb-c.h"

#define MSG(type, desc) ((type *)vd_csi_message(&(desc)))

VD_CSI_RPC(get_plugin_info, Csi__V1__GetPluginInfoRequest,
	   csi__v1__get_plugin_info_request__descriptor)
static int get_plugin_info(struct vd_core *core, const Csi__V1__GetPluginInfoRequest *rq,
			   ProtobufCMessage **ret_reply, struct vd_err *err)
{
	(void)core, (void)rq, (void)err;
	Csi__V1__GetPluginInfoResponse *r = MSG(Csi__V1__GetPluginInfoResponse,
						csi__v1__get_plugin_info_response__descriptor);
	r->name = VD_CSI_PLUGIN_NAME;
	r->vendor_version = VD_VERSION;
	*ret_reply = &r->base;
	return 0;
}

static Csi__V1__PluginCapability *service_capability(Csi__V1__PluginCapability__Service__Type t)
{
	Csi__V1__PluginCapability *c = MSG(Csi__V1__PluginCapability,
					   csi__v1__plugin_capability__descriptor);
	c->type_case = CSI__V1__PLUGIN_CAPABILITY__TYPE_SERVICE;
	c->service = MSG(Csi__V1__PluginCapability__Service,
			 csi__v1__plugin_capability__service__descriptor);
	c->service->type = t;
	return c;
}

VD_CSI_RPC(get_plugin_capabilities, Csi__V1__GetPluginCapabilitiesRequest,
	   csi__v1__get_plugin_capabilities_request__descriptor)
static int get_plugin_capabilities(struct vd_core *core,
				   const Csi__V1__GetPluginCapabilitiesRequest *rq,
				   ProtobufCMessage **ret_reply, struct vd_err *err)
{
	(void)core, (void)rq, (void)err;
	Csi__V1__GetPluginCapabilitiesResponse *r = MSG(
		Csi__V1__GetPluginCapabilitiesResponse,
		csi__v1__get_plugin_capabilities_response__descriptor);
	Csi__V1__PluginCapability *expansion = MSG(Csi__V1__PluginCapability,
						   csi__v1__plugin_capability__descriptor);
	expansion->type_case = CSI__V1__PLUGIN_CAPABILITY__TYPE_VOLUME_EXPANSION;
	expansion->volume_expansion = MSG(Csi__V1__PluginCapability__VolumeExpansion,
					  csi__v1__plugin_capability__volume_expansion__descriptor);
	expansion->volume_expansion->type = CSI__V1__PLUGIN_CAPABILITY__VOLUME_EXPANSION__TYPE__ONLINE;
	r->n_capabilities = 3;
	r->capabilities = vd_csi_alloc(3 * sizeof(*r->capabilities));
	r->capabilities[0] = service_capability(
		CSI__V1__PLUGIN_CAPABILITY__SERVICE__TYPE__CONTROLLER_SERVICE);
	r->capabilities[1] = service_capability(
		CSI__V1__PLUGIN_CAPABILITY__SERVICE__TYPE__VOLUME_ACCESSIBILITY_CONSTRAINTS);
	r->capabilities[2] = expansion;
	*ret_reply = &r->base;
	return 0;
}

VD_CSI_RPC(probe, Csi__V1__ProbeRequest, csi__v1__probe_request__descriptor)
static int probe(struct vd_core *core, const Csi__V1__ProbeRequest *rq,
		 ProtobufCMessage **ret_reply, struct vd_err *err)
{
	(void)rq;
	json_t *status = NULL;
	int r = vd_core_status(core, &status, err);   /* the core answers: it is ready */
	json_decref(status);
	if (r < 0)
		return r;
	Csi__V1__ProbeResponse *p = MSG(Csi__V1__ProbeResponse, csi__v1__probe_response__descriptor);
	p->ready = MSG(Google__Protobuf__BoolValue, google__protobuf__bool_value__descriptor);
	p->ready->value = 1;
	*ret_reply = &p->base;
	return 0;
}

const struct vd_grpc_method vd_csi_identity_methods[] = {
	{ "/csi.v1.Identity/GetPluginInfo", rpc_get_plugin_info },
	{ "/csi.v1.Identity/GetPluginCapabilities", rpc_get_plugin_capabilities },
	{ "/csi.v1.Identity/Probe", rpc_probe },
};
const size_t vd_csi_identity_count = sizeof(vd_csi_identity_methods) /
				     sizeof(vd_csi_identity_methods[0]);
