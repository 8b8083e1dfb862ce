#!/usr/bin/env bash
# test_csi.sh — volumed's CSI services (csi.v1 over gRPC) against the real
# daemon with real mounts, driven by tests/integ/csi_client.py acting as the
# CO: Identity; CreateVolume/DeleteVolume and their errors; controller
# publication; ValidateVolumeCapabilities; ListVolumes paging; the node
# lifecycle (stage, publish, read-only publish, stats, unpublish, unstage)
# with ext4, block access and mount flags; volume_mount_group; a second
# NodePublish at a target with other options; snapshots, clones and
# expansion (ext4 online, ext4 at the next stage, xfs online); volumes
# shared with Docker through a private dockerd; 50 concurrent streams; and a
# kill -9 of volumed with a volume staged and published.
#
# Each scenario is one run of the client, which asserts, prints a line per
# check and undoes what it did when a check fails. A failed scenario is
# reported and the test goes on with the next independent one; the test
# fails at the end, naming every scenario that failed.
source "$(dirname "$0")/lib.sh"

FAILED=()

# csi_scenario TITLE SCENARIO [ARGS...]: one independent client scenario.
csi_scenario() {
	local title=$1
	shift
	scenario "$title"
	csi_client "$@" || { FAILED+=("$title"); log "FAILED: $title (going on with the next scenario)"; }
}

# step_failed TITLE WHAT: a step of a dependent sequence failed; the rest of
# the sequence is skipped.
step_failed() {
	echo "FAIL: [$1] $2" >&2
	FAILED+=("$1")
	log "FAILED: $1 (the rest of this scenario is skipped)"
}

csi_stubs_make
dockerd_start
image_import
volumed_start_csi
DRV=$VD_DRIVER

csi_scenario "Identity: plugin info, capabilities, probe, node info" identity
csi_scenario "CreateVolume: sized, directory, idempotence, errors, topology, names" create
csi_scenario "DeleteVolume: idempotent, refused while published or staged" delete
csi_scenario "ControllerPublish/Unpublish" controller-publish
csi_scenario "ValidateVolumeCapabilities" validate
csi_scenario "ListVolumes paging, published nodes, GetCapacity, capabilities, GetVolume" list
csi_scenario "Full lifecycle of a sized ext4 volume" lifecycle
csi_scenario "Block access" block
csi_scenario "Mount flags" mount-flags
csi_scenario "volume_mount_group" mount-group
csi_scenario "NodePublish again at a target with other options" publish-incompatible
csi_scenario "Snapshots and clones" snapshots
csi_scenario "Expansion: ext4 online (staged and published)" expand-ext4-online
csi_scenario "Expansion: ext4 grown at the next stage, offline, errors" expand-ext4-restage
if PATH=$PATH:/usr/sbin:/sbin command -v mkfs.xfs >/dev/null; then
	csi_scenario "Expansion: xfs online" expand-xfs-online
else
	scenario "Expansion: xfs online"
	skip "mkfs.xfs not installed (xfsprogs)"
fi

# ---- Docker <-> CSI: one catalog for both front-ends.
docker_csi() {
	local t="Docker <-> CSI"
	scenario "$t"
	# A volume made by docker: CSI lists it, stages and publishes it.
	run docker volume create -d "$DRV" dk-docker
	((RC == 0)) || { step_failed "$t" "docker volume create: $OUT"; return; }
	run drun --rm -v dk-docker:/data "$IMAGE" sh -c 'echo from a container > /data/docker.txt'
	((RC == 0)) || { step_failed "$t" "container writing into dk-docker: $OUT"; return; }
	csi_client docker-check dk-docker || { FAILED+=("$t"); return; }
	run drun --rm -v dk-docker:/data "$IMAGE" cat /data/csi.txt
	[[ $RC == 0 && $OUT == "from csi" ]] ||
		{ step_failed "$t" "a container reading the file CSI wrote into dk-docker: expected 'from csi', got (status $RC) '$OUT'"; return; }
	log "  ok: a container reads the file written through the CSI target"
	run docker volume rm dk-docker
	((RC == 0)) || { step_failed "$t" "docker volume rm dk-docker after its CSI use: $OUT"; return; }

	# A volume made by CSI: docker lists it, a container writes into it.
	csi_client csi-create-for-docker dk-csi || { FAILED+=("$t"); return; }
	run docker volume ls -q --filter "driver=$DRV"
	[[ $RC == 0 && $'\n'$OUT$'\n' == *$'\n'dk-csi$'\n'* ]] ||
		{ step_failed "$t" "docker volume ls does not list the CSI volume dk-csi: $OUT"; return; }
	log "  ok: docker volume ls lists the CSI-created volume"
	run drun -d --name dk-holder -v dk-csi:/data "$IMAGE" sh -c \
		'echo written by docker > /data/from-docker.txt && sync && sleep 300'
	((RC == 0)) || { step_failed "$t" "container on dk-csi: $OUT"; return; }
	wait_until 10 docker exec dk-holder test -s /data/from-docker.txt ||
		{ step_failed "$t" "the container did not write into dk-csi"; return; }
	log "  ok: a container writes into the CSI-created volume"
	csi_client delete-busy dk-csi || FAILED+=("$t")
	run docker rm -f dk-holder
	((RC == 0)) || { step_failed "$t" "docker rm -f dk-holder: $OUT"; return; }
	wait_until 10 not_mounted "$VD_STATE/local/dk-csi/mnt" ||
		{ step_failed "$t" "dk-csi still mounted after its container went"; return; }
	csi_client docker-wrote dk-csi || { FAILED+=("$t"); return; }
	run docker volume ls -q --filter "driver=$DRV"
	[[ $'\n'$OUT$'\n' != *$'\n'dk-csi$'\n'* ]] ||
		{ step_failed "$t" "docker volume ls still lists dk-csi after DeleteVolume: $OUT"; return; }
	log "  ok: after DeleteVolume docker volume ls no longer lists it"
}
docker_csi

csi_scenario "50 concurrent streams on one channel" concurrency 50

# ---- kill -9 while a volume is staged and published through CSI.
restart() {
	local t="kill -9 with a volume staged and published"
	scenario "$t"
	local stg=$T/csi/stage/rs-1 tgt=$T/csi/pub/rs-1
	csi_client restart-setup || { FAILED+=("$t"); return; }
	volumed_kill9
	is_mounted "$stg" && is_mounted "$tgt" ||
		step_failed "$t" "volumed's death unmounted $stg or $tgt"
	volumed_start_csi
	csi_client restart-check || FAILED+=("$t")
}
restart

scenario "nothing left behind"
left=$(mountpoints | awk -v a="$T/csi" -v b="$VD_STATE" 'index($0, a "/") == 1 || index($0, b "/") == 1')
[[ -z $left ]] || FAILED+=("mounts left under $T/csi or the state dir: $left")
loops=$(losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v d="$VD_STATE/" 'index($2, d) == 1')
[[ -z $loops ]] || FAILED+=("loop devices left: $loops")
vols=$(volctl --json ls | vol_names | tr '\n' ' ')
[[ -z ${vols// /} ]] || FAILED+=("volumes left in the catalog: $vols")

if ((${#FAILED[@]})); then
	CUR_SCENARIO="summary"
	fail "$((${#FAILED[@]})) failed: $(printf '[%s] ' "${FAILED[@]}")"
fi
log "test_csi: all scenarios passed"
