#!/usr/bin/env bash
# Installs (if needed), starts and stops the real brokers the interoperability tests run against,
# on a Debian machine, bound to loopback only, on ports apart from stomp-server's defaults
# (61613, 15674) so that a server running meanwhile is never mistaken for a broker:
#   RabbitMQ: STOMP on 127.0.0.1:61633 (guest/guest, virtual host /), Web-STOMP on 15684
#   ActiveMQ: STOMP on 127.0.0.1:61623 (any login), persistent messages in KahaDB (its
#   default: synced to disk before they are acknowledged)
# What it changes on the system: it installs rabbitmq-server, activemq and a Java runtime with
# apt-get when they are missing (as root), and writes /etc/rabbitmq/rabbitmq-env.conf and
# /etc/rabbitmq/rabbitmq.conf (saying so); ActiveMQ's files stay under $STOMP_BROKER_STATE
# (default /tmp/stomp-rs-brokers).
# Usage: scripts/brokers.sh start | stop | install (installs what is missing, starts nothing)
set -euo pipefail

ACTIVEMQ_PORT=61623
RABBITMQ_PORT=61633
RABBITMQ_WEB_PORT=15684
STATE=${STOMP_BROKER_STATE:-/tmp/stomp-rs-brokers}

log() { echo "brokers: $*" >&2; }

install() {
    local missing=()
    command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
    [ -f /usr/share/activemq/bin/activemq.jar ] || missing+=(activemq)
    command -v java >/dev/null || missing+=(default-jre-headless)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

wait_for_port() {
    local port=$1 name=$2 seconds=$3
    for _ in $(seq $((seconds * 10))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            log "$name is up on 127.0.0.1:$port"
            return 0
        fi
        sleep 0.1
    done
    log "$name did not open 127.0.0.1:$port within ${seconds}s"
    return 1
}

start_rabbitmq() {
    # The node name must resolve, and everything stays on loopback.
    log "writing /etc/rabbitmq/rabbitmq-env.conf and /etc/rabbitmq/rabbitmq.conf"
    cat > /etc/rabbitmq/rabbitmq-env.conf <<CONF
NODENAME=rabbit@localhost
NODE_IP_ADDRESS=127.0.0.1
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
CONF
    cat > /etc/rabbitmq/rabbitmq.conf <<CONF
listeners.tcp.default = 127.0.0.1:5672
stomp.listeners.tcp.1 = 127.0.0.1:$RABBITMQ_PORT
web_stomp.tcp.ip = 127.0.0.1
web_stomp.tcp.port = $RABBITMQ_WEB_PORT
loopback_users = none
CONF
    export ERL_EPMD_ADDRESS=127.0.0.1 HOME=/var/lib/rabbitmq
    rabbitmq-plugins enable --offline rabbitmq_stomp rabbitmq_web_stomp >/dev/null
    # -detached returns at once, even when the start fails later: the port tells.
    rabbitmq-server -detached
}

start_activemq() {
    mkdir -p "$STATE/activemq/conf" "$STATE/activemq/data"
    cat > "$STATE/activemq/conf/activemq.xml" <<XML
<beans xmlns="http://www.springframework.org/schema/beans"
       xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
       http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="stomp-rs" useJmx="false" persistent="true">
    <persistenceAdapter>
      <kahaDB directory="$STATE/activemq/data/kahadb"/>
    </persistenceAdapter>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:$ACTIVEMQ_PORT"/>
    </transportConnectors>
  </broker>
</beans>
XML
    # /usr/bin/activemq switches user through a login shell; run Java directly.
    nohup java -Xmx256M \
        --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED \
        --add-opens java.base/java.net=ALL-UNNAMED --add-opens java.base/java.security=ALL-UNNAMED \
        -Dactivemq.home=/usr/share/activemq -Dactivemq.base="$STATE/activemq" \
        -Dactivemq.conf="$STATE/activemq/conf" -Dactivemq.data="$STATE/activemq/data" \
        -jar /usr/share/activemq/bin/activemq.jar start "xbean:file:$STATE/activemq/conf/activemq.xml" \
        >"$STATE/activemq.log" 2>&1 &
    echo $! > "$STATE/activemq.pid"
}

stop() {
    if [ -f "$STATE/activemq.pid" ]; then
        kill "$(cat "$STATE/activemq.pid")" 2>/dev/null || true
        rm -f "$STATE/activemq.pid"
    fi
    if command -v rabbitmqctl >/dev/null; then
        HOME=/var/lib/rabbitmq rabbitmqctl stop >/dev/null 2>&1 || true
        epmd -kill >/dev/null 2>&1 || true
    fi
}

case "${1:-}" in
    start)
        mkdir -p "$STATE"
        install
        stop
        # Both start at once; each is waited for once both are on their way.
        start_rabbitmq
        start_activemq
        wait_for_port "$RABBITMQ_PORT" RabbitMQ 90
        wait_for_port "$ACTIVEMQ_PORT" ActiveMQ 90 || { tail -20 "$STATE/activemq.log" >&2; exit 1; }
        ;;
    stop) stop ;;
    install) install ;;
    *) echo "usage: $0 start|stop|install" >&2; exit 2 ;;
esac
