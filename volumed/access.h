/* access.h — how a node uses a volume: the access mode the controller
 * arbitrates between nodes, and where and how the node agent publishes it. */
#ifndef VD_ACCESS_H
#define VD_ACCESS_H

/* Two nodes may share a volume unless either uses it as its single writer. */
enum vd_access {
	VD_ACCESS_SINGLE = 0,  /* one node reads and writes */
	VD_ACCESS_MULTI,       /* many nodes read and write */
	VD_ACCESS_READONLY,    /* many nodes read */
};

struct vd_mount_opts {
	enum vd_access access;  /* recorded by the first mount on this node */
	int block;              /* a raw block device, not a file system */
	const char *target;     /* also bind the volume here; NULL: no bind */
	int readonly;           /* the bind is read-only */
	unsigned long flags;    /* MS_* bits for the bind (see bind.h) */
	int set_group;          /* give the file system's root to group, setgid */
	unsigned group;         /* and group-writable (Kubernetes' fsGroup) */
	int force;              /* take it from another node even while in use there */
};

#endif
