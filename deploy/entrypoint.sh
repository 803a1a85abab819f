#!/bin/sh
# tickflow-entrypoint: start one process of a tickflow cluster from a StatefulSet pod (or any
# host whose name ends in -N), with no hand-edited address list.
#
# It renders the final config from the mounted cluster.toml and then
#   exec tickflow run --config <rendered> --process <ordinal> [$TICKFLOW_RUN_ARGS] [ARGS...]
# Rendering replaces (or adds) these keys and leaves every other line as it is:
#   [cluster] processes = the REPLICAS peers, "<peer host i>:<timely port>" for i in 0..REPLICAS-1,
#             peer host i = TICKFLOW_PEER_HOST_TEMPLATE with {i} replaced
#             (default: <set>-{i}.<service>.<namespace>.svc.<cluster domain>, the stable DNS
#             name of pod i behind the headless Service)
#   [status]  listen = "<TICKFLOW_STATUS_HOST>:<TICKFLOW_STATUS_PORT - ordinal>": tickflow's
#             process N listens on status.listen's port + N, so every pod ends up on the same
#             TICKFLOW_STATUS_PORT, which is what the probes and the scrape annotations name
#   [serve]   peers = "<peer host i>:<TICKFLOW_STATUS_PORT>" for every process: where the query
#             API forwards a question about a symbol another process owns
#   [checkpoint] url = TICKFLOW_CHECKPOINT_URL                     (only when set)
#   [sinks.questdb] token / basic-auth from TICKFLOW_QUESTDB_TOKEN, TICKFLOW_QUESTDB_USER +
#             TICKFLOW_QUESTDB_PASSWORD                             (only when set and the section exists)
#   [alerts]  token / telegram-bot-token from TICKFLOW_RULES_TOKEN, TICKFLOW_TELEGRAM_BOT_TOKEN
#                                                                   (only when set and the section exists)
# Secrets therefore come from the environment (Kubernetes Secrets), never from the ConfigMap;
# the rendered file is written with mode 600.
#
# Environment (defaults in brackets):
#   TICKFLOW_CONFIG [/etc/tickflow/cluster.toml]    the config to start from (the ConfigMap)
#   TICKFLOW_RENDERED_CONFIG [/tmp/tickflow/cluster.toml]
#   REPLICAS [1]                                    the number of processes: the StatefulSet's replicas
#   POD_NAME [$(hostname)]                          ordinal = the number after the last "-"
#   TICKFLOW_PROCESS                                the ordinal, instead of taking it from POD_NAME
#   TICKFLOW_SERVICE [<set name>]                   the headless Service (set name = POD_NAME less "-N")
#   POD_NAMESPACE [the pod's service-account namespace, else "default"]
#   TICKFLOW_CLUSTER_DOMAIN [cluster.local]
#   TICKFLOW_PEER_HOST_TEMPLATE                     e.g. "tickflow-{i}" (compose service names)
#   TICKFLOW_TIMELY_PORT [2101]  TICKFLOW_STATUS_HOST [0.0.0.0]  TICKFLOW_STATUS_PORT [9100]
#   TICKFLOW_DNS_WAIT [120]                         seconds to wait for this pod's own name to resolve
#   TICKFLOW_RUN_ARGS                               extra `tickflow run` arguments, e.g. "--fresh"
#   TICKFLOW_BIN [tickflow]
# Usage: tickflow-entrypoint [--render-only] [tickflow run arguments ...]
#   --render-only  write the rendered config, print it on stdout and exit (no tickflow run).
set -eu

die() {
	echo "tickflow-entrypoint: $*" >&2
	exit 64
}

is_uint() {
	case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac
}

nl='
'
tab=$(printf '\t')
cr=$(printf '\r')

# A TOML basic string: backslash and double quote escaped. Control characters are refused
# (check_value) before: a Secret stored with a trailing newline is the usual culprit.
check_value() { # name value
	case $2 in *"$nl"* | *"$cr"* | *"$tab"*)
		die "$1: contains a newline, carriage return or tab; store the Secret without one" ;;
	esac
}
toml_string() {
	printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

render_only=0
if [ "${1:-}" = "--render-only" ]; then
	render_only=1
	shift
fi

src=${TICKFLOW_CONFIG:-/etc/tickflow/cluster.toml}
out=${TICKFLOW_RENDERED_CONFIG:-/tmp/tickflow/cluster.toml}
replicas=${REPLICAS:-1}
pod=${POD_NAME:-$(hostname)}
ordinal=${TICKFLOW_PROCESS:-${pod##*-}}
set_name=${pod%-*}
service=${TICKFLOW_SERVICE:-$set_name}
if [ -z "${POD_NAMESPACE:-}" ] && [ -r /var/run/secrets/kubernetes.io/serviceaccount/namespace ]; then
	POD_NAMESPACE=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)
fi
namespace=${POD_NAMESPACE:-default}
domain=${TICKFLOW_CLUSTER_DOMAIN:-cluster.local}
default_template="$set_name-{i}.$service.$namespace.svc.$domain"
template=${TICKFLOW_PEER_HOST_TEMPLATE:-$default_template}
timely_port=${TICKFLOW_TIMELY_PORT:-2101}
status_host=${TICKFLOW_STATUS_HOST:-0.0.0.0}
status_port=${TICKFLOW_STATUS_PORT:-9100}

[ -r "$src" ] || die "TICKFLOW_CONFIG=$src: cannot read it"
{ is_uint "$replicas" && [ "$replicas" -ge 1 ]; } || die "REPLICAS=$replicas: expected a positive integer, e.g. 2"
is_uint "$ordinal" || die "process ordinal \"$ordinal\" (from POD_NAME=$pod): expected a name ending in -N, e.g. tickflow-0, or TICKFLOW_PROCESS=N"
[ "$ordinal" -lt "$replicas" ] || die "process $ordinal but REPLICAS=$replicas: the StatefulSet was scaled without changing REPLICAS; scale with the overlay that sets both (see the README, Deploy)"
is_uint "$timely_port" || die "TICKFLOW_TIMELY_PORT=$timely_port: expected a port number, e.g. 2101"
{ is_uint "$status_port" && [ "$status_port" -gt "$ordinal" ]; } || die "TICKFLOW_STATUS_PORT=$status_port: expected a port number above the ordinal, e.g. 9100"
case $template in *"{i}"*) ;; *) die "TICKFLOW_PEER_HOST_TEMPLATE=$template: has no {i}, e.g. \"tickflow-{i}.tickflow\"" ;; esac

# The process list, in ordinal order, identical in every pod.
processes=""
status_peers=""
i=0
while [ "$i" -lt "$replicas" ]; do
	host=$(printf '%s' "$template" | sed "s/{i}/$i/g")
	[ "$i" -eq "$ordinal" ] && own_host=$host
	processes="$processes${processes:+, }\"$host:$timely_port\""
	status_peers="$status_peers${status_peers:+, }\"$host:$status_port\""
	i=$((i + 1))
done

# Edits, one per line: section <TAB> key <TAB> when (always | if-section) <TAB> TOML value.
edits="cluster${tab}processes${tab}always${tab}[$processes]
status${tab}listen${tab}always${tab}\"$status_host:$((status_port - ordinal))\"
serve${tab}peers${tab}always${tab}[$status_peers]"
add_edit() { # section key when value-name value
	[ -n "$5" ] || return 0
	check_value "$4" "$5"
	edits="$edits
$1$tab$2$tab$3$tab$(toml_string "$5" "$4")"
}
add_edit checkpoint url always TICKFLOW_CHECKPOINT_URL "${TICKFLOW_CHECKPOINT_URL:-}"
add_edit sinks.questdb token if-section TICKFLOW_QUESTDB_TOKEN "${TICKFLOW_QUESTDB_TOKEN:-}"
if [ -n "${TICKFLOW_QUESTDB_USER:-}" ] || [ -n "${TICKFLOW_QUESTDB_PASSWORD:-}" ]; then
	add_edit sinks.questdb basic-auth if-section TICKFLOW_QUESTDB_USER/PASSWORD \
		"${TICKFLOW_QUESTDB_USER:-}:${TICKFLOW_QUESTDB_PASSWORD:-}"
fi
add_edit alerts token if-section TICKFLOW_RULES_TOKEN "${TICKFLOW_RULES_TOKEN:-}"
add_edit alerts telegram-bot-token if-section TICKFLOW_TELEGRAM_BOT_TOKEN "${TICKFLOW_TELEGRAM_BOT_TOKEN:-}"

# The awk pass: drop every edited key (with its continuation lines when the value is a
# multi-line array), then write the new values at the end of their section; sections that are
# missing are appended (edits marked if-section are then skipped). Limits: `[table]` headers
# only (no dotted `cluster.processes = ...` keys at the top level), no multi-line strings in
# the edited keys. Values travel in the environment, not `awk -v`, which would unescape them.
mkdir -p "$(dirname "$out")"
umask 077
tmp="$out.tmp.$$"
TF_EDITS=$edits TF_HEADER="# Rendered by tickflow-entrypoint from $src for process $ordinal of $replicas. Do not edit." \
	awk '
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
function flush(sec,   k) {
	for (k = 1; k <= n; k++)
		if (esec[k] == sec && !done[k]) { print ekey[k] " = " eval[k]; done[k] = 1 }
}
function depth(s,   t, o, c) { t = s; o = gsub(/\[/, "", t); t = s; c = gsub(/\]/, "", t); return o - c }
BEGIN {
	n = split(ENVIRON["TF_EDITS"], lines, "\n")
	for (k = 1; k <= n; k++) {
		split(lines[k], f, "\t")
		esec[k] = f[1]; ekey[k] = f[2]; ewhen[k] = f[3]
		v = lines[k]; for (j = 1; j <= 3; j++) sub(/^[^\t]*\t/, "", v); eval[k] = v
		want[f[1] SUBSEP f[2]] = 1
	}
	print ENVIRON["TF_HEADER"]
	sec = ""; skip = 0
}
skip > 0 { skip += depth($0); if (skip <= 0) skip = 0; next }
/^[ \t]*\[/ {
	h = trim($0); sub(/[ \t]*#.*$/, "", h)
	if (h ~ /^\[\[/) { flush(sec); sec = "[[" h; seen[sec] = 1; print; next }
	if (h ~ /^\[[^]]*\]$/) { flush(sec); sec = trim(substr(h, 2, length(h) - 2)); seen[sec] = 1; print; next }
}
/^[ \t]*"?[A-Za-z0-9_-]+"?[ \t]*=/ {
	key = $0; sub(/=.*/, "", key); key = trim(key); gsub(/"/, "", key)
	if ((sec SUBSEP key) in want) {
		val = $0; sub(/^[^=]*=/, "", val); sub(/#[^"]*$/, "", val)
		d = depth(val); if (d > 0) skip = d
		next
	}
}
{ print }
END {
	flush(sec)
	for (k = 1; k <= n; k++) {
		if (done[k]) continue
		if (ewhen[k] != "always") {
			print "tickflow-entrypoint: " ekey[k] " for [" esec[k] "] is set in the environment, but the config has no [" esec[k] "] section; not used" | "cat 1>&2"
			continue
		}
		printf "\n[%s]\n", esec[k]; seen[esec[k]] = 1; flush(esec[k])
	}
}' "$src" >"$tmp"
mv "$tmp" "$out"

if [ "$render_only" -eq 1 ]; then
	cat "$out"
	exit 0
fi

# timely binds this process's own entry of the list, so its name must resolve first; a pod's
# own name is in its /etc/hosts at once, a peer's DNS record may lag (timely retries those).
if command -v getent >/dev/null 2>&1; then
	waited=0
	until getent hosts "$own_host" >/dev/null 2>&1; do
		[ "$waited" -lt "${TICKFLOW_DNS_WAIT:-120}" ] || die "$own_host does not resolve after ${waited}s; is the headless Service $service there?"
		sleep 1
		waited=$((waited + 1))
	done
fi

echo "tickflow-entrypoint: process $ordinal of $replicas, processes = [$processes]" >&2
# TICKFLOW_RUN_ARGS is split on spaces on purpose (flags such as "--from-checkpoint ID").
# shellcheck disable=SC2086
exec "${TICKFLOW_BIN:-tickflow}" run --config "$out" --process "$ordinal" ${TICKFLOW_RUN_ARGS:-} "$@"
