#!/usr/bin/env bash
# test_swarm.sh — a one-node Swarm on a private dockerd (127.0.0.1, private
# ports) with volumed as its volume plugin: a service whose task writes into
# a volumed volume, a forced redeploy keeping the data, a scale to two tasks
# sharing the volume and back, service rm, swarm leave.
source "$(dirname "$0")/lib.sh"

SVC=vdsvc$VD_ID
# Swarm gives its nodes a bridge named docker_gwbridge, shared by the whole
# host unless the node already has a network of that name: this test makes
# one over a private bridge, which its cleanup deletes.
GWBRIDGE=vdgw$$

test_cleanup() {
	ip link show "$GWBRIDGE" >/dev/null 2>&1 && ip link del "$GWBRIDGE"
	return 0
}

# free_port BASE: the first free TCP port from BASE + this run's offset.
free_port() {
	local k p
	for ((k = 0; k < 200; k++)); do
		p=$(($1 + ($$ + k) % 200))
		nfs_port_free "$p" && { echo "$p"; return 0; }
	done
	fail "no free port from $1"
}

# task_containers: the ids of this service's running containers.
task_containers() {
	docker ps -q --filter "label=com.docker.swarm.service.name=$SVC"
}

tasks_running() {  # tasks_running N
	[[ $(task_containers | grep -c .) == "$1" ]]
}

refs_of() {
	volctl --json inspect "$1" | jget status.refs
}

refs_are() {  # refs_are NAME N
	[[ $(refs_of "$1") == "$2" ]]
}

marker_lines() {
	grep -c . "$VD_STATE/local/sv1/data/marker" 2>/dev/null
}

lines_are() {  # lines_are N
	[[ $(marker_lines) == "$1" ]]
}

dockerd_start
image_import
volumed_start
DRV=$VD_DRIVER

scenario "swarm init on 127.0.0.1"
# A node offers a legacy plugin to the scheduler once dockerd has loaded it
# (else tasks stay Pending: "missing plugin"): the first use loads it.
assert_ok docker volume create -d "$DRV" sv1
assert_ok docker info -f '{{json .Plugins.Volume}}'
assert_contains "$OUT" "\"$DRV\"" "the node's volume plugins"
assert_ok docker network create --driver bridge --subnet "198.18.$(($$ % 256)).0/24" \
	--opt "com.docker.network.bridge.name=$GWBRIDGE" \
	--opt com.docker.network.bridge.enable_icc=false \
	--opt com.docker.network.bridge.enable_ip_masquerade=false docker_gwbridge
SWARM_PORT=$(free_port 24400)
DATA_PORT=$(free_port 24700)
assert_ok docker swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$SWARM_PORT" \
	--data-path-port "$DATA_PORT"
assert_eq "active" "$(docker info -f '{{.Swarm.LocalNodeState}}')" "swarm state"

scenario "a service writes into a volumed volume"
# The task appends its name to a marker and keeps running; the image is
# local only (--no-resolve-image), stop-grace short (sleep ignores SIGTERM).
assert_ok docker service create --detach --name "$SVC" --no-resolve-image \
	--stop-grace-period 1s --env 'TASK={{.Task.Name}}' \
	--mount "type=volume,source=sv1,target=/data,volume-driver=$DRV" \
	"$IMAGE" sh -c 'echo "$TASK" >> /data/marker; exec sleep 300'
wait_until 30 tasks_running 1 || fail "the service's task is not running: $(docker service ps "$SVC" 2>&1)"
wait_until 10 lines_are 1 || fail "marker after the first task: $(marker_lines) lines"
first=$(cat "$VD_STATE/local/sv1/data/marker")
assert_match "$first" "^$SVC\.1\." "the first task's marker"
assert_eq "$DRV" "$(docker volume inspect -f '{{.Driver}}' sv1)" "driver of the service's volume"
assert_eq "1" "$(refs_of sv1)" "refs with one task"
c1=$(task_containers)
assert_ok docker exec "$c1" cat /data/marker
assert_eq "$first" "$OUT" "the task reads its marker back"

scenario "docker service update --force: a new task, the same data"
assert_ok docker service update --detach --force "$SVC"
wait_until 30 lines_are 2 || fail "no second marker after the redeploy: $(marker_lines) lines"
wait_until 20 tasks_running 1 || fail "tasks after the redeploy: $(task_containers | wc -l)"
c2=$(task_containers)
assert_ne "$c1" "$c2" "the redeployed task's container"
assert_ok docker exec "$c2" cat /data/marker
assert_eq "$first" "$(head -n 1 <<<"$OUT")" "the first task's marker, read by the new task"
assert_match "$(tail -n 1 <<<"$OUT")" "^$SVC\.1\." "the new task's marker"
wait_until 10 refs_are sv1 1 || fail "refs after the redeploy: $(refs_of sv1), expected 1"

scenario "scale to 2: both tasks on this node share the volume; back to 1"
assert_ok docker service scale --detach "$SVC=2"
wait_until 30 tasks_running 2 || fail "two tasks not running: $(docker service ps "$SVC" 2>&1)"
wait_until 10 lines_are 3 || fail "markers with two tasks: $(marker_lines) lines"
wait_until 10 refs_are sv1 2 || fail "refs with two tasks: $(refs_of sv1), expected 2"
assert_eq "true" "$(volctl --json inspect sv1 | jget status.mounted)" "mounted while both run"
read -r ca cb <<<"$(task_containers | tr '\n' ' ')"
assert_ok docker exec "$ca" sh -c 'echo "from-$TASK" > /data/shared'
assert_ok docker exec "$cb" cat /data/shared
assert_match "$OUT" "^from-$SVC\.[12]\." "one task reads the other's write"
assert_ok docker service scale --detach "$SVC=1"
wait_until 20 tasks_running 1 || fail "tasks after scaling back: $(task_containers | wc -l)"
wait_until 10 refs_are sv1 1 || fail "refs after scaling back: $(refs_of sv1), expected 1"

scenario "docker service rm, volume rm, swarm leave"
assert_ok docker service rm "$SVC"
wait_until 20 tasks_running 0 || fail "containers left after service rm: $(task_containers)"
wait_until 10 refs_are sv1 0 || fail "refs after service rm: $(refs_of sv1), expected 0"
assert_eq "3" "$(marker_lines)" "the volume outlives its service"
# Swarm keeps its tasks' stopped containers a while: they still name sv1.
stopped=$(docker ps -aq --filter "label=com.docker.swarm.service.name=$SVC")
[[ -z $stopped ]] || assert_ok docker rm -f $stopped
assert_ok docker volume rm sv1
[[ ! -e $VD_STATE/local/sv1 ]] || fail "docker volume rm left $VD_STATE/local/sv1"
assert_ok docker swarm leave --force
assert_eq "inactive" "$(docker info -f '{{.Swarm.LocalNodeState}}')" "swarm state after leave"
assert_ok docker network rm docker_gwbridge
ip link show docker_gwbridge >/dev/null 2>&1 && fail "a host-wide docker_gwbridge was made"

log "test_swarm: all scenarios passed"
