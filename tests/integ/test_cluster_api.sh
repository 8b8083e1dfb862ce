#!/usr/bin/env bash
# test_cluster_api.sh — the REST API over HTTPS on TCP (--listen) with a
# bearer token: a throwaway CA and server certificate made with openssl;
# curl and volctl --url with the right token work; no token, a wrong one, an
# empty one, one of another length, Basic auth and a bare token are refused
# with 401 and change nothing; plain HTTP to the TLS port gets no answer;
# the config refusals (exit 2, naming the key); the unix sockets are 0660;
# the token never reaches the log.
source "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || fail "openssl not installed (make deps-test)"

PKI=$T/pki
TOKEN_FILE=$T/token
VOLCTL_OUTPUTS=$T/volctl-outputs   # everything volctl printed, checked for the token

# ---------------------------------------------------------------- setup

# pki_make: a CA, and a server certificate for 127.0.0.1 signed by it.
pki_make() {
	tls_pki_make "$PKI" || fail "openssl could not make the test certificates: $(tail -n 5 "$PKI/openssl.log")"
	# Another CA, which did not sign the server's certificate.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$PKI/other-ca.key" -out "$PKI/other-ca.pem" -days 2 -subj "/CN=other CA" \
		>>"$PKI/openssl.log" 2>&1 || fail "openssl: the second CA"
	openssl verify -CAfile "$PKI/ca.pem" "$PKI/server.pem" >/dev/null 2>&1 ||
		fail "the test server certificate does not verify against the test CA"
}

# port_pick: HTTPS_PORT = a free TCP port, from an offset derived from the pid.
port_pick() {
	local k p
	for ((k = 0; k < 400; k++)); do
		p=$((23000 + ($$ + k) % 400))
		if nfs_port_free "$p"; then
			HTTPS_PORT=$p
			return 0
		fi
	done
	fail "no free TCP port for the HTTPS API"
}

pki_make
openssl rand -hex 32 >"$TOKEN_FILE" || fail "openssl rand"
chmod 600 "$TOKEN_FILE"
TOKEN=$(cat "$TOKEN_FILE")
((${#TOKEN} == 64)) || fail "token of ${#TOKEN} characters"
port_pick
URL=https://127.0.0.1:$HTTPS_PORT
TLS_ARGS=(--tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key")

# api STATUS-VAR BODY-VAR METHOD PATH [CURL-ARGS...]: one HTTPS request with
# our CA; HSTATUS = the status (000: no HTTP answer), HBODY = the body,
# HHDRS = the response headers.
api() {
	local method=$1 path=$2 out
	shift 2
	: >"$T/.hdrs"
	out=$(curl -s --max-time 20 --cacert "$PKI/ca.pem" -X "$method" -D "$T/.hdrs" \
		-w '\n%{http_code}' "$@" "$URL$path")
	HSTATUS=${out##*$'\n'}
	HBODY=${out%$'\n'*}
	HHDRS=$(tr -d '\r' <"$T/.hdrs")
}

# api_ok METHOD PATH [CURL-ARGS...]: with the right token; status 2xx.
api_ok() {
	api "$@" -H "Authorization: Bearer $TOKEN"
	[[ $HSTATUS == 2?? ]] || fail "$1 $2 with the token: status $HSTATUS: $HBODY"
}

# names_https: the volume names, over HTTPS with the token.
names_https() {
	api_ok GET /v1/volumes
	vol_names <<<"$HBODY" | tr '\n' ' '
}

# expect_401 WHAT METHOD PATH [CURL-ARGS...]: refused with the 401 shape.
expect_401() {
	local what=$1
	shift
	api "$@"
	assert_eq "401" "$HSTATUS" "status with $what ($1 $2)"
	assert_eq "missing or invalid bearer token" "$(jget error <<<"$HBODY")" "error with $what"
	assert_eq "unauthorized" "$(jget kind <<<"$HBODY")" "kind with $what"
	grep -qi '^WWW-Authenticate: Bearer' <<<"$HHDRS" ||
		fail "no WWW-Authenticate: Bearer header with $what: $HHDRS"
	log "  401 as expected: $what ($1 $2)"
}

# vtls ARGS...: volctl over HTTPS with the right token and our CA.
vtls() {
	"$VOLCTL_BIN" --url "$URL" --token-file "$TOKEN_FILE" --ca-file "$PKI/ca.pem" "$@"
}

# keep: appends OUT (or ERRLINE) to what volctl printed.
keep() { printf '%s\n' "${OUT:-}" "${ERRLINE:-}" >>"$VOLCTL_OUTPUTS"; }

# ---------------------------------------------------------------- refusals

scenario "config refusals: exit 2 naming the key, before anything is served"
# refused WHAT NEEDLE ARGS...: volumed with ARGS exits 2 at once; OUT names NEEDLE.
refused() {
	local what=$1 needle=$2
	shift 2
	run timeout 10 "$VOLUMED_BIN" --state-dir "$T/badstate" --api-socket "$T/bad-api.sock" \
		--docker-socket "" --csi-endpoint "" "$@"
	assert_eq "2" "$RC" "exit status for $what: $OUT"
	assert_contains "$OUT" "$needle" "message for $what"
	assert_not_contains "$OUT" "$TOKEN" "message for $what"
	[[ ! -e $T/bad-api.sock ]] || fail "volumed served its API despite $what"
	log "  refused: $what -> $OUT"
}
refused "--listen without TLS files" "tls_cert" --listen "127.0.0.1:$HTTPS_PORT" \
	--token-file "$TOKEN_FILE"
refused "--listen without --tls-key" "tls_key" --listen "127.0.0.1:$HTTPS_PORT" \
	--tls-cert "$PKI/server.pem" --token-file "$TOKEN_FILE"
refused "--listen without --token-file" "token_file" --listen "127.0.0.1:$HTTPS_PORT" \
	"${TLS_ARGS[@]}"
refused "--controller-url without --token-file" "token_file" --controller-url "https://127.0.0.1:1"
refused "--controller-url http://" "controller_url" --controller-url "http://127.0.0.1:$HTTPS_PORT" \
	--token-file "$TOKEN_FILE"
assert_contains "$OUT" "https://" "the http:// refusal says what is accepted"
refused "--listen without a port" "listen" --listen 127.0.0.1 "${TLS_ARGS[@]}" \
	--token-file "$TOKEN_FILE"
run env VOLUMED_LISTEN="127.0.0.1:$HTTPS_PORT" timeout 10 "$VOLUMED_BIN" --state-dir "$T/badstate" \
	--api-socket "$T/bad-api.sock" --docker-socket "" --csi-endpoint "" --token-file "$TOKEN_FILE"
assert_eq "2" "$RC" "exit status for VOLUMED_LISTEN without TLS files: $OUT"
assert_contains "$OUT" "tls_cert" "message for VOLUMED_LISTEN without TLS files"
refused "a missing certificate file" "tls_cert $T/nope.pem" --listen "127.0.0.1:$HTTPS_PORT" \
	--tls-cert "$T/nope.pem" --tls-key "$PKI/server.key" --token-file "$TOKEN_FILE"
printf 'short-token\n' >"$T/short-token"
chmod 600 "$T/short-token"
refused "a token of 11 characters" "at least 16" --listen "127.0.0.1:$HTTPS_PORT" \
	"${TLS_ARGS[@]}" --token-file "$T/short-token"
: >"$T/empty-token"
refused "an empty token file" "empty" --listen "127.0.0.1:$HTTPS_PORT" "${TLS_ARGS[@]}" \
	--token-file "$T/empty-token"
refused "--lease-ms 999" "lease_ms" --lease-ms 999
assert_contains "$OUT" "1000..600000" "the lease_ms refusal gives the range"
refused "--move-wait-ms -5" "move_wait_ms" --move-wait-ms -5
cat >"$T/bad-url.json" <<EOF
{"controller_url": "http://ctl:8443", "token_file": "$TOKEN_FILE"}
EOF
refused "controller_url http:// in the config file" "controller_url" --config "$T/bad-url.json"

# ---------------------------------------------------------------- serve

scenario "volumed serves the API over HTTPS on 127.0.0.1:$HTTPS_PORT"
volumed_start --listen "127.0.0.1:$HTTPS_PORT" "${TLS_ARGS[@]}" --token-file "$TOKEN_FILE"
wait_until 5 grep -q "api listening on https://127.0.0.1:$HTTPS_PORT" "$VD_LOG" ||
	fail "no 'api listening on https://127.0.0.1:$HTTPS_PORT' in the log"
wait_until 5 curl -sf --max-time 5 --cacert "$PKI/ca.pem" -H "Authorization: Bearer $TOKEN" \
	"$URL/v1/status" || fail "the HTTPS API does not answer on $URL"
grep -q "token_file .* readable by group or others" "$VD_LOG" &&
	fail "a warning about the token file's mode, which is 0600"

scenario "unix sockets are 0660 and need no token"
assert_eq "660" "$(stat -c %a "$VD_API")" "mode of the API socket"
assert_eq "660" "$(stat -c %a "$VD_SOCK")" "mode of the plugin socket"
assert_ok volctl --json ls
assert_eq "" "$(vol_names <<<"$OUT" | tr '\n' ' ')" "volumes at start, over the unix socket"

scenario "curl with the token: list, create, inspect, status"
api_ok GET /v1/volumes
assert_eq "" "$(vol_names <<<"$HBODY" | tr '\n' ' ')" "volumes at start, over HTTPS"
api_ok POST /v1/volumes -H 'Content-Type: application/json' --data '{"name":"c1"}'
assert_eq "201" "$HSTATUS" "status of a create over HTTPS"
assert_eq "c1" "$(jget name <<<"$HBODY")" "name in the create's answer"
assert_eq "c1 " "$(names_https)" "volumes after the create, over HTTPS"
api_ok GET /v1/volumes/c1
assert_eq "local" "$(jget driver <<<"$HBODY")" "driver of c1 over HTTPS"
api_ok GET /v1/status
assert_eq "$VD_NODE" "$(jget node_id <<<"$HBODY")" "status over HTTPS"
assert_eq "c1 " "$(volctl --json ls | vol_names | tr '\n' ' ')" "the unix socket sees the same volumes"

scenario "without the right token: 401, and nothing changes"
before=$(ls "$VD_STATE/local" | tr '\n' ' ')
wrong=$(openssl rand -hex 32)
expect_401 "no Authorization header" GET /v1/volumes
expect_401 "no token, a create" POST /v1/volumes -H 'Content-Type: application/json' \
	--data '{"name":"evil1"}'
expect_401 "a wrong token of the same length" POST /v1/volumes \
	-H "Authorization: Bearer $wrong" --data '{"name":"evil2"}'
expect_401 "'Bearer ' and nothing" GET /v1/volumes -H "Authorization: Bearer "
expect_401 "'Bearer' alone" POST /v1/volumes -H "Authorization: Bearer" --data '{"name":"evil3"}'
expect_401 "a token one character short" POST /v1/volumes \
	-H "Authorization: Bearer ${TOKEN%?}" --data '{"name":"evil4"}'
expect_401 "a token one character long" GET /v1/volumes -H "Authorization: Bearer ${TOKEN}0"
expect_401 "a 16-character prefix" GET /v1/volumes -H "Authorization: Bearer ${TOKEN:0:16}"
expect_401 "Basic auth with the token as password" POST /v1/volumes -u "admin:$TOKEN" \
	--data '{"name":"evil5"}'
expect_401 "the token without a scheme" GET /v1/volumes -H "Authorization: $TOKEN"
expect_401 "a wrong token, delete" DELETE /v1/volumes/c1 -H "Authorization: Bearer $wrong"
expect_401 "no token, mount" POST /v1/volumes/c1/mount --data '{}'
expect_401 "no token, unknown route" GET /v1/nothing
big=$(head -c 100000 /dev/zero | tr '\0' 'x')
# The answer must reach the client every time, not race its upload.
for i in 1 2 3 4 5 6 7 8 9 10; do
	expect_401 "no token, a body over the limit ($i)" POST /v1/volumes --data "{\"name\":\"$big\"}"
done
assert_eq "c1 " "$(names_https)" "volumes after the refused requests"
assert_eq "$before" "$(ls "$VD_STATE/local" | tr '\n' ' ')" "the state directory after the refused requests"
api_ok GET /v1/volumes/c1
assert_eq "0" "$(jget status.refs <<<"$HBODY")" "refs of c1 after a refused mount"
vd_alive || fail "volumed died during the refused requests"

scenario "plain http:// to the TLS port gets no HTTP answer"
run curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
	"http://127.0.0.1:$HTTPS_PORT/v1/volumes"
((RC != 0)) || fail "curl over plain HTTP succeeded (status $OUT)"
assert_eq "000" "$OUT" "HTTP status over plain HTTP"
# And the server goes on serving.
assert_eq "c1 " "$(names_https)" "volumes after the plain-HTTP attempt"

scenario "volctl --url with the token and the CA: ls, create, inspect, rm"
assert_ok vtls ls
keep
assert_contains "$OUT" "c1" "volctl --url ls"
assert_ok vtls create c2
keep
assert_eq "c2" "$OUT" "volctl --url create"
assert_ok vtls --json inspect c2
keep
assert_eq "c2" "$(jget name <<<"$OUT")" "volctl --url inspect"
assert_ok vtls --json ls
keep
assert_eq "c1 c2 " "$(vol_names <<<"$OUT" | tr '\n' ' ')" "volctl --url --json ls"
assert_ok vtls status
keep
assert_contains "$OUT" "$VD_NODE" "volctl --url status"
assert_ok vtls rm c2
keep
assert_eq "c1 " "$(names_https)" "volumes after volctl --url rm"
# The same through the environment.
run env VOLCTL_URL="$URL/" VOLCTL_TOKEN_FILE="$TOKEN_FILE" VOLCTL_CA_FILE="$PKI/ca.pem" \
	"$VOLCTL_BIN" --json ls
keep
((RC == 0)) || fail "volctl with VOLCTL_URL, VOLCTL_TOKEN_FILE, VOLCTL_CA_FILE: $OUT"
assert_eq "c1 " "$(vol_names <<<"$OUT" | tr '\n' ' ')" "volctl through the environment"

scenario "volctl: a wrong token, a wrong CA, http://, no token file"
printf '%s\n' "$wrong" >"$T/wrong-token"
assert_fails_one_line "$VOLCTL_BIN" --url "$URL" --token-file "$T/wrong-token" \
	--ca-file "$PKI/ca.pem" create evil6
keep
assert_eq "1" "$RC" "volctl exit status with a wrong token"
assert_eq "volctl: volumed at $URL refused the token: missing or invalid bearer token" "$ERRLINE" \
	"volctl's message for a wrong token"
assert_fails_one_line "$VOLCTL_BIN" --url "$URL" --token-file "$T/wrong-token" \
	--ca-file "$PKI/ca.pem" ls
keep
assert_contains "$ERRLINE" "refused the token" "volctl ls with a wrong token"
assert_fails_one_line "$VOLCTL_BIN" --url "$URL" --token-file "$TOKEN_FILE" \
	--ca-file "$PKI/other-ca.pem" ls
keep
assert_eq "1" "$RC" "volctl exit status with the wrong CA"
assert_contains "$ERRLINE" "cannot verify the certificate" "volctl with the wrong CA"
run "$VOLCTL_BIN" --url "http://127.0.0.1:$HTTPS_PORT" --token-file "$TOKEN_FILE" ls
keep
assert_eq "2" "$RC" "volctl exit status with an http:// URL"
assert_contains "$OUT" "https://" "volctl's message for an http:// URL"
run "$VOLCTL_BIN" --url "$URL" --ca-file "$PKI/ca.pem" ls
keep
assert_eq "2" "$RC" "volctl exit status with --url and no token file"
assert_contains "$OUT" "--token-file" "volctl's message without a token file"
assert_eq "c1 " "$(names_https)" "volumes after volctl's refused calls"

scenario "the token never appears in the log or in volctl's output"
grep -qF "$TOKEN" "$VD_LOG" && fail "the token appears in volumed's log"
grep -qF "$TOKEN" "$VOLCTL_OUTPUTS" && fail "the token appears in volctl's output"
grep -q "refused .* from 127.0.0.1: missing bearer token" "$VD_LOG" ||
	fail "refused requests are not logged"
grep -q "refused .* invalid bearer token" "$VD_LOG" || fail "refused tokens are not logged"

scenario "a second volumed on the same port fails, and warns about a readable token file"
cp "$TOKEN_FILE" "$T/loose-token"
chmod 644 "$T/loose-token"
run timeout 20 "$VOLUMED_BIN" --state-dir "$T/state2" --api-socket "$T/api2.sock" \
	--docker-socket "" --csi-endpoint "" --node-id second --listen "127.0.0.1:$HTTPS_PORT" \
	"${TLS_ARGS[@]}" --token-file "$T/loose-token"
assert_eq "1" "$RC" "exit status of a second volumed on a taken port: $OUT"
assert_contains "$OUT" "127.0.0.1:$HTTPS_PORT" "the second volumed's error names the address"
assert_contains "$OUT" "Address already in use" "the second volumed's error says why"
assert_contains "$OUT" "readable by group or others" "warning for a token file of mode 0644"
assert_not_contains "$OUT" "$TOKEN" "the second volumed's output"
[[ ! -e $T/api2.sock ]] || fail "the second volumed left its API socket behind"
assert_eq "c1 " "$(names_https)" "the first volumed still serves"

scenario "a certificate and key that do not match: exit 1 with a clear message"
# Port 0 is refused by the configuration (node agents must know the port).
refused "--listen 127.0.0.1:0" "port 0" --listen "127.0.0.1:0" "${TLS_ARGS[@]}" \
	--token-file "$TOKEN_FILE"
first_port=$HTTPS_PORT
port_pick   # another free port: the first volumed holds its own
assert_ne "$first_port" "$HTTPS_PORT" "a second free port"
run timeout 20 "$VOLUMED_BIN" --state-dir "$T/state3" --api-socket "$T/api3.sock" \
	--docker-socket "" --csi-endpoint "" --node-id third --listen "127.0.0.1:$HTTPS_PORT" \
	--tls-cert "$PKI/server.pem" --tls-key "$PKI/ca.key" --token-file "$TOKEN_FILE"
assert_eq "1" "$RC" "exit status with a key that does not match the certificate: $OUT"
assert_contains "$OUT" "matching certificate and key" "message for a mismatched key"
[[ ! -e $T/api3.sock ]] || fail "the third volumed left its API socket behind"

scenario "clean stop closes the TCP port"
volumed_stop
assert_eq "0" "$VD_STOP_RC" "exit status on SIGTERM"
run curl -s --max-time 5 -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.pem" \
	-H "Authorization: Bearer $TOKEN" "$URL/v1/volumes"
((RC != 0)) || fail "the HTTPS API still answers after the stop"
grep -qF "$TOKEN" "$VD_LOG" && fail "the token appears in volumed's log"

log "test_cluster_api: all scenarios passed"
