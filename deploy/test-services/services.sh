#!/usr/bin/env bash
# Installs, starts and stops the real services the integration tests talk to,
# on loopback only:
#   - Apache Kafka 4.x, single-node KRaft (combined broker + controller),
#     PLAINTEXT 127.0.0.1:19092, controller 127.0.0.1:19093
#   - ClickHouse (Debian package), HTTP 127.0.0.1:18123, native TCP 127.0.0.1:19000,
#     user aqs / password aqs-test
#   - Keycloak (OpenID Connect provider, dev mode), HTTP 127.0.0.1:18180, realm aqs with
#     the client aqs-dashboard and one user per dashboard role (keycloak-realm.json);
#     started only when named: `start keycloak` (or `start kafka clickhouse keycloak`)
#
# Usage: services.sh start [kafka|clickhouse|keycloak]...   (none named: kafka clickhouse)
#        services.sh stop [kafka|clickhouse|keycloak]...    (none named: all three)
#        services.sh restart [kafka|clickhouse|keycloak]...
#        services.sh relaunch [kafka|clickhouse|keycloak]...  (start again after a stop, keeping the data)
#        services.sh pause kafka|clickhouse|keycloak  (SIGSTOP: the service hangs, sockets stay open)
#        services.sh resume kafka|clickhouse|keycloak (SIGCONT)
#        services.sh status
#        services.sh env
#
# AQS_SERVICES_DIR (default /tmp/aqs-services): configs, data, logs, pid files and the
#   env file. A service's folder in it is wiped whenever that service is started, so
#   every run begins from empty state.
# AQS_CACHE_DIR (default ~/.cache/aqs): Kafka jars, the Keycloak distribution and the
#   Maven repository they were resolved through; kept across runs so a warm start needs
#   no network.
# AQS_KAFKA_PORT, AQS_KAFKA_CONTROLLER_PORT, AQS_CLICKHOUSE_HTTP_PORT,
#   AQS_CLICKHOUSE_TCP_PORT, AQS_KEYCLOAK_PORT: the ports (defaults below).
# AQS_KEYCLOAK_JAVA_HOME (default /usr/lib/jvm/temurin-25-jdk-amd64): Keycloak 26 needs
#   Java 21 or newer. Fault tests start a private pair
#   on other ports, in a services dir of their own, so that stopping or hanging it
#   disturbs no other test.
# See README.md beside this file.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

AQS_SERVICES_DIR=$(realpath -m "${AQS_SERVICES_DIR:-/tmp/aqs-services}")
AQS_CACHE_DIR=$(realpath -m "${AQS_CACHE_DIR:-${HOME:-/root}/.cache/aqs}")

KAFKA_VERSION=${AQS_KAFKA_VERSION:-4.4.0}
# Must match the log4j-core that kafka_2.13 pulls in (2.25.5 for Kafka 4.4.0).
LOG4J_VERSION=${AQS_LOG4J_VERSION:-2.25.5}
KEYCLOAK_VERSION=${AQS_KEYCLOAK_VERSION:-26.7.3}
KEYCLOAK_JAVA_HOME=${AQS_KEYCLOAK_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
KAFKA_START_TIMEOUT=${AQS_KAFKA_START_TIMEOUT:-120}
CLICKHOUSE_START_TIMEOUT=${AQS_CLICKHOUSE_START_TIMEOUT:-60}
KEYCLOAK_START_TIMEOUT=${AQS_KEYCLOAK_START_TIMEOUT:-180}
STOP_TIMEOUT=15

# Loopback only; the env file (read by the Rust code) names the ports chosen.
readonly HOST=127.0.0.1
readonly KAFKA_PORT=${AQS_KAFKA_PORT:-19092} KAFKA_CONTROLLER_PORT=${AQS_KAFKA_CONTROLLER_PORT:-19093}
readonly CH_HTTP_PORT=${AQS_CLICKHOUSE_HTTP_PORT:-18123} CH_TCP_PORT=${AQS_CLICKHOUSE_TCP_PORT:-19000}
readonly CH_USER=aqs CH_PASSWORD=aqs-test
readonly KC_PORT=${AQS_KEYCLOAK_PORT:-18180} KC_REALM=aqs

KAFKA_HOME=$AQS_CACHE_DIR/kafka-$KAFKA_VERSION
KAFKA_LIBS=$KAFKA_HOME/libs
KAFKA_DIR=$AQS_SERVICES_DIR/kafka
CH_DIR=$AQS_SERVICES_DIR/clickhouse
KEYCLOAK_HOME=$AQS_CACHE_DIR/keycloak-$KEYCLOAK_VERSION
KC_DIR=$AQS_SERVICES_DIR/keycloak
ENV_FILE=$AQS_SERVICES_DIR/env
# Started when no service is named; Keycloak (slow to start, needed by the sign-in tests
# only) starts when named.
DEFAULT_SERVICES=(kafka clickhouse)
ALL_SERVICES=(kafka clickhouse keycloak)

SUDO=
if [[ $EUID -ne 0 ]] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi

# ---------------------------------------------------------------- helpers

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Microseconds since the epoch (bash 5; strips the locale's decimal separator).
now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }
# Seconds elapsed since a now_us value, e.g. "3.4s".
since() {
    local d=$(( $(now_us) - $1 ))
    printf '%d.%ds' $(( d / 1000000 )) $(( d % 1000000 / 100000 ))
}

# True when something accepts TCP connections on HOST:$1.
port_open() {
    # shellcheck disable=SC2016 # $0/$1 expand in the inner bash, on purpose
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

sed_escape() { printf '%s' "$1" | sed -e 's/[\\&#]/\\&/g'; }

service_dir() { echo "$AQS_SERVICES_DIR/$1"; }
pid_file() { echo "$AQS_SERVICES_DIR/$1/$1.pid"; }
log_files() {
    case $1 in
        kafka) echo "$KAFKA_DIR/kafka.log $KAFKA_DIR/kafka.out" ;;
        clickhouse) echo "$CH_DIR/clickhouse-server.err.log $CH_DIR/clickhouse-server.log $CH_DIR/clickhouse.out" ;;
        keycloak) echo "$KC_DIR/keycloak.out" ;;
    esac
}
# A string that only the process we launched has on its command line, so that a
# recycled pid (or a developer's own Kafka/ClickHouse) is never mistaken for ours.
cmdline_marker() {
    case $1 in
        kafka) echo "kafka.Kafka $KAFKA_DIR/server.properties" ;;
        clickhouse) echo "--config-file=$CH_DIR/config.xml" ;;
        keycloak) echo "-Dkc.home.dir=$KC_DIR/dist" ;;
    esac
}
endpoint() {
    case $1 in
        kafka) echo "$HOST:$KAFKA_PORT" ;;
        clickhouse) echo "http://$HOST:$CH_HTTP_PORT" ;;
        keycloak) echo "http://$HOST:$KC_PORT/realms/$KC_REALM" ;;
    esac
}

# Prints the pid of our running instance of service $1; fails if there is none.
pid_of() {
    local f pid cmd
    f=$(pid_file "$1")
    [[ -f $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmd == *"$(cmdline_marker "$1")"* ]] || return 1
    echo "$pid"
}

ports_of() {
    case $1 in
        kafka) echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT" ;;
        clickhouse) echo "$CH_HTTP_PORT $CH_TCP_PORT" ;;
        keycloak) echo "$KC_PORT" ;;
    esac
}

# True when service $1 answers on its port (whoever runs it).
answers() {
    case $1 in
        kafka) port_open "$KAFKA_PORT" ;;
        clickhouse) curl -sf --max-time 2 "http://$HOST:$CH_HTTP_PORT/ping" >/dev/null 2>&1 ;;
        keycloak) curl -sf --max-time 2 "http://$HOST:$KC_PORT/realms/$KC_REALM/.well-known/openid-configuration" >/dev/null 2>&1 ;;
    esac
}

print_log_tail() {
    local f
    for f in $(log_files "$1"); do
        [[ -s $f ]] || continue
        if grep -qE ' (ERROR|FATAL) |<(Error|Fatal)>' "$f"; then
            printf -- '----- first error lines of %s -----\n' "$f" >&2
            grep -m 5 -E ' (ERROR|FATAL) |<(Error|Fatal)>' "$f" | cut -c1-400 >&2
        fi
    done
    for f in $(log_files "$1"); do
        [[ -s $f ]] || continue
        printf -- '----- last 40 lines of %s -----\n' "$f" >&2
        tail -n 40 "$f" >&2
    done
    printf -- '-----\n' >&2
}

check_services() {
    local s
    for s in "$@"; do
        case $s in kafka | clickhouse | keycloak) ;; *) die "unknown service '$s' (expected kafka, clickhouse or keycloak)" ;; esac
    done
}

check_dirs() {
    [[ $AQS_SERVICES_DIR != / && $AQS_CACHE_DIR != / ]] || die "refusing to use / as a services or cache dir"
    [[ $AQS_SERVICES_DIR != "$AQS_CACHE_DIR" ]] || die "AQS_SERVICES_DIR and AQS_CACHE_DIR must differ"
}

# One start/stop at a time per services dir. fd 9 is closed for the services
# themselves (see launch) so that they do not keep holding the lock.
take_lock() {
    mkdir -p "$AQS_SERVICES_DIR"
    exec 9>"$AQS_SERVICES_DIR/.lock"
    flock -w 300 9 || die "another services.sh holds $AQS_SERVICES_DIR/.lock"
}

write_env() {
    cat >"$ENV_FILE.tmp" <<EOF
export AQS_KAFKA_BROKERS=$HOST:$KAFKA_PORT
export AQS_CLICKHOUSE_URL=http://$HOST:$CH_HTTP_PORT
export AQS_CLICKHOUSE_USER=$CH_USER
export AQS_CLICKHOUSE_PASSWORD=$CH_PASSWORD
EOF
    # Only while it runs: the sign-in tests skip (or fail in CI) without it.
    if pid_of keycloak >/dev/null; then
        echo "export AQS_KEYCLOAK_URL=http://$HOST:$KC_PORT" >>"$ENV_FILE.tmp"
    fi
    mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# Runs "$@" detached from our session (own session, no stdin, no lock fd) with
# output to file $1; records the pid in $2. The subshell execs setsid, which (not
# being a process-group leader in a non-interactive script) calls setsid() and execs
# the service in place, so $! is the service's own pid.
launch() {
    local out=$1 pidf=$2 dir
    shift 2
    dir=$(dirname "$pidf")
    (cd "$dir" && exec setsid "$@" </dev/null >"$out" 2>&1 9>&-) &
    echo $! >"$pidf"
}

# ---------------------------------------------------------------- kafka

ensure_kafka_libs() {
    local t pom_sum marker=$KAFKA_HOME/.complete
    t=$(now_us)
    pom_sum=$(cat "$HERE/kafka-pom.xml" <(echo "$KAFKA_VERSION $LOG4J_VERSION") | sha256sum | cut -d' ' -f1)
    # The marker is written only after a successful, checked resolution, and names
    # the pom it came from: a changed pom or an interrupted run resolves again.
    if [[ -d $KAFKA_LIBS && -f $marker && $(head -n1 "$marker") == "pom $pom_sum" ]]; then
        log "kafka $KAFKA_VERSION libs cached ($(($(wc -l <"$marker") - 1)) jars in $KAFKA_LIBS) in $(since "$t")"
        return
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found; install Maven (apt-get install maven)"
    log "resolving kafka $KAFKA_VERSION from Maven Central into $KAFKA_LIBS ..."
    mkdir -p "$KAFKA_HOME"
    rm -rf "$KAFKA_LIBS" "$KAFKA_HOME/libs.tmp" "$marker"
    cp "$HERE/kafka-pom.xml" "$KAFKA_HOME/pom.xml"
    if ! (cd "$KAFKA_HOME" && mvn -B -q -f pom.xml \
        -Dmaven.repo.local="$AQS_CACHE_DIR/m2" \
        -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" \
        dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$KAFKA_HOME/libs.tmp") >"$KAFKA_HOME/mvn.log" 2>&1; then
        tail -n 40 "$KAFKA_HOME/mvn.log" >&2
        die "could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (log: $KAFKA_HOME/mvn.log)"
    fi
    local jar
    for jar in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-clients-$KAFKA_VERSION.jar" \
        "kafka-server-$KAFKA_VERSION.jar" "kafka-raft-$KAFKA_VERSION.jar" \
        "log4j-slf4j-impl-$LOG4J_VERSION.jar"; do
        [[ -f $KAFKA_HOME/libs.tmp/$jar ]] || die "resolution finished but $jar is missing (log: $KAFKA_HOME/mvn.log)"
    done
    mv "$KAFKA_HOME/libs.tmp" "$KAFKA_LIBS"
    { echo "pom $pom_sum"; ls "$KAFKA_LIBS"; } >"$marker.tmp"
    mv "$marker.tmp" "$marker"
    log "kafka $KAFKA_VERSION libs resolved ($(($(wc -l <"$marker") - 1)) jars) in $(since "$t")"
}

# Compiles KafkaReady.java once per version of its source, next to the jars.
ensure_ready_check() {
    local t sum
    t=$(now_us)
    sum=$(sha256sum "$HERE/KafkaReady.java" | cut -c1-16)
    READY_CLASSES=$KAFKA_HOME/ready-check-$sum
    if [[ -f $READY_CLASSES/KafkaReady.class ]]; then return; fi
    command -v javac >/dev/null 2>&1 || die "javac not found; a JDK 17+ is required"
    rm -rf "$READY_CLASSES.tmp"
    mkdir -p "$READY_CLASSES.tmp"
    javac -nowarn -d "$READY_CLASSES.tmp" -cp "$KAFKA_LIBS/*" "$HERE/KafkaReady.java" >&2 ||
        die "could not compile KafkaReady.java"
    rm -rf "$READY_CLASSES"
    mv "$READY_CLASSES.tmp" "$READY_CLASSES"
    log "kafka ready-check compiled in $(since "$t")"
}

# A Kafka cluster id is 16 random bytes in URL-safe base64 without padding
# (what `kafka-storage.sh random-uuid` prints); made here to save a JVM start. Like Kafka's
# own, it never starts with '-', which the format tool would take for an option.
kafka_cluster_id() {
    local hex cid
    while :; do
        hex=$(tr -d '-' </proc/sys/kernel/random/uuid)
        # shellcheck disable=SC2059,SC2001
        cid=$(printf "$(sed 's/../\\x&/g' <<<"$hex")" | basenc --base64url | tr -d '=\n')
        [[ $cid == -* ]] || break
    done
    printf '%s' "$cid"
}

start_kafka() {
    local t cid
    command -v java >/dev/null 2>&1 || die "java not found; Kafka $KAFKA_VERSION needs Java 17+"
    if [[ ${KEEP_DATA:-0} == 1 && -f $KAFKA_DIR/server.properties ]]; then
        launch_kafka
        return
    fi
    rm -rf -- "$KAFKA_DIR"
    mkdir -p "$KAFKA_DIR/data"
    sed -e "s#@KAFKA_DATA_DIR@#$(sed_escape "$KAFKA_DIR/data")#g" \
        -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@KAFKA_CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
        "$HERE/kafka-server.properties" >"$KAFKA_DIR/server.properties"
    cp "$HERE/kafka-log4j2.xml" "$KAFKA_DIR/log4j2.xml"

    t=$(now_us)
    cid=$(kafka_cluster_id)
    [[ ${#cid} -eq 22 ]] || die "bad cluster id '$cid'"
    if ! java -Xmx256m -cp "$KAFKA_LIBS/*" \
        -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.xml" -Dkafka.logs.dir="$KAFKA_DIR" \
        kafka.tools.StorageTool format --standalone -t "$cid" \
        -c "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/format.log" 2>&1; then
        cat "$KAFKA_DIR/format.log" >&2
        die "kafka storage format failed"
    fi
    log "kafka storage formatted (cluster id $cid) in $(since "$t")"
    launch_kafka
}

launch_kafka() {
    KAFKA_LAUNCHED_US=$(now_us)
    launch "$KAFKA_DIR/kafka.out" "$(pid_file kafka)" \
        java -Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.xml" -Dkafka.logs.dir="$KAFKA_DIR" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties"
    LAUNCHED+=(kafka)
}

# Readiness: first the listener must accept TCP connections; that alone is not
# enough, because Kafka binds the socket early and only serves requests once the
# broker has replayed the metadata log and been unfenced. Then KafkaReady (Admin
# client from the same jars) must get a DescribeCluster listing a node and a
# Metadata (ListTopics) answer. Both steps watch the broker process, so a crash is
# reported at once with the log tail rather than after the timeout.
wait_kafka() {
    local pid deadline check_pid rc left
    pid=$(<"$(pid_file kafka)")
    deadline=$(( $(date +%s) + KAFKA_START_TIMEOUT ))
    until port_open "$KAFKA_PORT"; do
        kill -0 "$pid" 2>/dev/null || service_failed kafka "the broker exited during startup"
        (( $(date +%s) < deadline )) || service_failed kafka "port $KAFKA_PORT not open after ${KAFKA_START_TIMEOUT}s"
        sleep 0.1
    done
    left=$(( deadline - $(date +%s) ))
    (( left > 0 )) || left=1
    java -Xmx128m -XX:TieredStopAtLevel=1 -cp "$READY_CLASSES:$KAFKA_LIBS/*" \
        KafkaReady "$HOST:$KAFKA_PORT" "$left" >"$KAFKA_DIR/ready-check.log" 2>&1 9>&- &
    check_pid=$!
    while kill -0 "$check_pid" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            kill "$check_pid" 2>/dev/null || true
            wait "$check_pid" 2>/dev/null || true
            service_failed kafka "the broker exited during startup"
        fi
        sleep 0.1
    done
    rc=0
    wait "$check_pid" || rc=$?
    if [[ $rc -ne 0 ]]; then
        cat "$KAFKA_DIR/ready-check.log" >&2
        service_failed kafka "no metadata answer within ${KAFKA_START_TIMEOUT}s"
    fi
    log "kafka ready on $HOST:$KAFKA_PORT (pid $pid) in $(since "$KAFKA_LAUNCHED_US") after launch"
}

# ---------------------------------------------------------------- clickhouse

clickhouse_server_bin() {
    local b
    for b in "$(command -v clickhouse-server 2>/dev/null || true)" /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
        [[ -n $b && -x $b ]] && { echo "$b"; return 0; }
    done
    return 1
}

ensure_clickhouse() {
    local t cand aptlog=$AQS_CACHE_DIR/apt-clickhouse.log
    t=$(now_us)
    if clickhouse_server_bin >/dev/null && command -v clickhouse-client >/dev/null 2>&1; then
        log "clickhouse already installed ($(dpkg-query -W -f='${Version}' clickhouse-server 2>/dev/null || echo '?')) in $(since "$t")"
        return
    fi
    command -v apt-get >/dev/null 2>&1 || die "clickhouse-server is not installed and apt-get is not available"
    mkdir -p "$AQS_CACHE_DIR"
    : >"$aptlog"
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the package lists only when they do not know the package.
    cand=$(apt-cache policy clickhouse-server 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [[ -z $cand || $cand == "(none)" ]]; then
        log "clickhouse-server unknown to apt; running apt-get update ..."
        $SUDO apt-get update -q >>"$aptlog" 2>&1 || { tail -n 20 "$aptlog" >&2; die "apt-get update failed"; }
    fi
    log "installing clickhouse-server clickhouse-client with apt ..."
    if ! $SUDO apt-get install -y -q --no-install-recommends clickhouse-server clickhouse-client >>"$aptlog" 2>&1; then
        # Stale lists (a superseded version gone from the mirror): refresh once, retry.
        log "apt-get install failed; running apt-get update and retrying ..."
        { $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends \
            clickhouse-server clickhouse-client; } >>"$aptlog" 2>&1 ||
            { tail -n 30 "$aptlog" >&2; die "could not install clickhouse (log: $aptlog)"; }
    fi
    clickhouse_server_bin >/dev/null || die "clickhouse-server binary not found after install"
    log "clickhouse installed ($(dpkg-query -W -f='${Version}' clickhouse-server)) in $(since "$t")"
}

start_clickhouse() {
    local bin
    bin=$(clickhouse_server_bin)
    if [[ ${KEEP_DATA:-0} == 1 && -f $CH_DIR/config.xml ]]; then
        CH_LAUNCHED_US=$(now_us)
        launch "$CH_DIR/clickhouse.out" "$(pid_file clickhouse)" "$bin" --config-file="$CH_DIR/config.xml"
        LAUNCHED+=(clickhouse)
        return
    fi
    rm -rf -- "$CH_DIR"
    mkdir -p "$CH_DIR/data" "$CH_DIR/tmp" "$CH_DIR/user_files" "$CH_DIR/format_schemas"
    sed -e "s#@CH_DIR@#$(sed_escape "$CH_DIR")#g" \
        -e "s#@CH_HTTP_PORT@#$CH_HTTP_PORT#g" -e "s#@CH_TCP_PORT@#$CH_TCP_PORT#g" \
        "$HERE/clickhouse-config.xml" >"$CH_DIR/config.xml"
    cp "$HERE/clickhouse-users.xml" "$CH_DIR/users.xml"
    CH_LAUNCHED_US=$(now_us)
    launch "$CH_DIR/clickhouse.out" "$(pid_file clickhouse)" \
        "$bin" --config-file="$CH_DIR/config.xml"
    LAUNCHED+=(clickhouse)
}

wait_clickhouse() {
    local pid deadline
    pid=$(<"$(pid_file clickhouse)")
    deadline=$(( $(date +%s) + CLICKHOUSE_START_TIMEOUT ))
    until answers clickhouse; do
        kill -0 "$pid" 2>/dev/null || service_failed clickhouse "the server exited during startup"
        (( $(date +%s) < deadline )) ||
            service_failed clickhouse "http://$HOST:$CH_HTTP_PORT/ping did not answer within ${CLICKHOUSE_START_TIMEOUT}s"
        sleep 0.1
    done
    log "clickhouse ready on http://$HOST:$CH_HTTP_PORT (tcp $CH_TCP_PORT, pid $pid) in $(since "$CH_LAUNCHED_US") after launch"
}

# ---------------------------------------------------------------- keycloak

# The distribution zip from Maven Central, unpacked once into the cache; a marker written
# after a complete unpack makes later starts skip Maven and unzip.
ensure_keycloak() {
    local t marker=$KEYCLOAK_HOME/.complete zip
    t=$(now_us)
    [[ -x $KEYCLOAK_JAVA_HOME/bin/java ]] ||
        die "Keycloak $KEYCLOAK_VERSION needs Java 21+: $KEYCLOAK_JAVA_HOME/bin/java not found (set AQS_KEYCLOAK_JAVA_HOME)"
    if [[ -f $marker ]]; then
        log "keycloak $KEYCLOAK_VERSION cached in $KEYCLOAK_HOME in $(since "$t")"
        return
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found; install Maven (apt-get install maven)"
    command -v unzip >/dev/null 2>&1 || die "unzip not found (apt-get install unzip)"
    log "resolving keycloak $KEYCLOAK_VERSION from Maven Central ..."
    rm -rf "$KEYCLOAK_HOME" "$KEYCLOAK_HOME.tmp"
    mkdir -p "$KEYCLOAK_HOME.tmp"
    if ! mvn -B -q -Dmaven.repo.local="$AQS_CACHE_DIR/m2" dependency:copy \
        -Dartifact="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip" \
        -DoutputDirectory="$KEYCLOAK_HOME.tmp" >"$AQS_CACHE_DIR/mvn-keycloak.log" 2>&1; then
        tail -n 40 "$AQS_CACHE_DIR/mvn-keycloak.log" >&2
        die "could not resolve org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip"
    fi
    zip=$KEYCLOAK_HOME.tmp/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip
    (cd "$KEYCLOAK_HOME.tmp" && unzip -q "$zip" && rm -f "$zip") || die "could not unpack $zip"
    [[ -x $KEYCLOAK_HOME.tmp/keycloak-$KEYCLOAK_VERSION/bin/kc.sh ]] || die "no bin/kc.sh in the keycloak distribution"
    mv "$KEYCLOAK_HOME.tmp/keycloak-$KEYCLOAK_VERSION" "$KEYCLOAK_HOME"
    rm -rf "$KEYCLOAK_HOME.tmp"
    echo "keycloak $KEYCLOAK_VERSION" >"$marker"
    log "keycloak $KEYCLOAK_VERSION resolved and unpacked in $(since "$t")"
}

# Each services dir runs its own copy of the distribution: Keycloak keeps its database
# (dev-file H2) and its build under its home folder.
start_keycloak() {
    if [[ ${KEEP_DATA:-0} != 1 || ! -d $KC_DIR/dist ]]; then
        rm -rf -- "$KC_DIR"
        mkdir -p "$KC_DIR"
        cp -a "$KEYCLOAK_HOME" "$KC_DIR/dist"
        rm -f "$KC_DIR/dist/.complete"
        mkdir -p "$KC_DIR/dist/data/import"
        cp "$HERE/keycloak-realm.json" "$KC_DIR/dist/data/import/aqs-realm.json"
    fi
    KC_LAUNCHED_US=$(now_us)
    launch "$KC_DIR/keycloak.out" "$(pid_file keycloak)" \
        env JAVA_HOME="$KEYCLOAK_JAVA_HOME" JAVA_OPTS_KC_HEAP="-Xms64m -Xmx512m" \
        KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=aqs-test-admin \
        "$KC_DIR/dist/bin/kc.sh" start-dev --http-host="$HOST" --http-port="$KC_PORT" \
        --import-realm
    LAUNCHED+=(keycloak)
}

wait_keycloak() {
    local pid deadline
    pid=$(<"$(pid_file keycloak)")
    deadline=$(( $(date +%s) + KEYCLOAK_START_TIMEOUT ))
    until answers keycloak; do
        kill -0 "$pid" 2>/dev/null || service_failed keycloak "the server exited during startup"
        (( $(date +%s) < deadline )) ||
            service_failed keycloak "$(endpoint keycloak) did not answer within ${KEYCLOAK_START_TIMEOUT}s"
        sleep 0.5
    done
    log "keycloak ready on http://$HOST:$KC_PORT (realm $KC_REALM, pid $pid) in $(since "$KC_LAUNCHED_US") after launch"
}

# ---------------------------------------------------------------- start / stop

LAUNCHED=()

service_failed() {
    log "error: $1 failed to start: $2"
    print_log_tail "$1"
    exit 1   # the EXIT trap of cmd_start stops what this run launched
}

# Stops our instances of the given services, if running: TERM to all of them at
# once, up to STOP_TIMEOUT s for them to exit, then KILL. Never fails.
stop_services() {
    local s pid t i alive
    local -A pids=()
    t=$(now_us)
    for s in "$@"; do
        if pid=$(pid_of "$s"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids[$s]=$pid
        else
            rm -f "$(pid_file "$s")"
            log "$s not running"
        fi
    done
    [[ ${#pids[@]} -gt 0 ]] || return 0
    for (( i = 0; i < STOP_TIMEOUT * 10; i++ )); do
        alive=0
        for s in "${!pids[@]}"; do
            if kill -0 "${pids[$s]}" 2>/dev/null; then alive=1; fi
        done
        (( alive )) || break
        sleep 0.1
    done
    for s in "${!pids[@]}"; do
        pid=${pids[$s]}
        if kill -0 "$pid" 2>/dev/null; then
            log "$s (pid $pid) still running after ${STOP_TIMEOUT}s; sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
            for (( i = 0; i < 50; i++ )); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
        rm -f "$(pid_file "$s")"
        log "$s stopped (pid $pid) in $(since "$t")"
    done
}

on_start_exit() {
    local rc=$? s
    if [[ $rc -ne 0 && ${#LAUNCHED[@]} -gt 0 ]]; then
        log "start failed; stopping what this run launched: ${LAUNCHED[*]}"
        stop_services "${LAUNCHED[@]}" || true
    fi
}

cmd_start() {
    local services=("$@") todo=() s pid port t_total
    [[ ${#services[@]} -gt 0 ]] || services=("${DEFAULT_SERVICES[@]}")
    check_services "${services[@]}"
    check_dirs
    take_lock
    t_total=$(now_us)
    trap on_start_exit EXIT

    for s in "${services[@]}"; do
        if pid=$(pid_of "$s"); then
            if answers "$s"; then
                log "$s already running (pid $pid, $(endpoint "$s"))"
                continue
            fi
            log "$s process $pid is alive but $(endpoint "$s") does not answer; restarting it"
            stop_services "$s"
        fi
        for port in $(ports_of "$s"); do
            if port_open "$port"; then
                ss -ltnp 2>/dev/null | grep -E ":$port\b" >&2 || true
                die "$HOST:$port is already taken by a process that is not a $s started by this script (dir $AQS_SERVICES_DIR); stop it first"
            fi
        done
        todo+=("$s")
    done

    # Install / resolve first (may need the network), then launch both so that they
    # boot side by side, then wait for each.
    for s in "${todo[@]}"; do
        case $s in
            kafka) ensure_kafka_libs; ensure_ready_check ;;
            clickhouse) ensure_clickhouse ;;
            keycloak) ensure_keycloak ;;
        esac
    done
    for s in "${todo[@]}"; do
        case $s in
            kafka) start_kafka ;;
            clickhouse) start_clickhouse ;;
            keycloak) start_keycloak ;;
        esac
    done
    for s in clickhouse kafka keycloak; do
        [[ " ${todo[*]} " == *" $s "* ]] || continue
        case $s in
            kafka) wait_kafka ;;
            clickhouse) wait_clickhouse ;;
            keycloak) wait_keycloak ;;
        esac
    done

    write_env
    trap - EXIT
    log "started in $(since "$t_total"); env file: $ENV_FILE"
}

cmd_stop() {
    local services=("$@") s
    [[ ${#services[@]} -gt 0 ]] || services=("${ALL_SERVICES[@]}")
    check_services "${services[@]}"
    [[ -d $AQS_SERVICES_DIR ]] || { log "nothing to stop ($AQS_SERVICES_DIR does not exist)"; return 0; }
    take_lock
    stop_services "${services[@]}" || true
}

# SIGSTOP / SIGCONT: a hung service keeps its sockets open and answers nothing, the
# failure that timeouts (not connection errors) must catch.
cmd_signal() {
    local signal=$1 s=${2:-} pid
    [[ -n $s ]] || die "which service? (kafka, clickhouse or keycloak)"
    check_services "$s"
    pid=$(pid_of "$s") || die "$s is not running (dir $AQS_SERVICES_DIR)"
    kill "-$signal" "$pid"
    log "$s (pid $pid) sent $signal"
}

cmd_status() {
    local s pid
    for s in "${ALL_SERVICES[@]}"; do
        if pid=$(pid_of "$s"); then
            if answers "$s"; then
                echo "$s: running (pid $pid, $(endpoint "$s"))"
            else
                echo "$s: starting or hung (pid $pid alive, $(endpoint "$s") not answering)"
            fi
        else
            echo "$s: not running"
        fi
    done
}

cmd_env() {
    if [[ -f $ENV_FILE ]]; then
        cat "$ENV_FILE"
    else
        log "note: $ENV_FILE does not exist yet (run: $0 start)"
        mkdir -p "$AQS_SERVICES_DIR"
        write_env
        cat "$ENV_FILE"
    fi
}

usage() {
    sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"
}

main() {
    local cmd=${1:-}
    [[ $# -gt 0 ]] && shift
    case $cmd in
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        restart) cmd_stop "$@"; cmd_start "$@" ;;
        relaunch) KEEP_DATA=1 cmd_start "$@" ;;
        pause) cmd_signal STOP "$@" ;;
        resume) cmd_signal CONT "$@" ;;
        status) cmd_status ;;
        env) cmd_env ;;
        -h | --help | help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
