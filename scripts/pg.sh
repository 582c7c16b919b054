#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: initdb + pg_ctl in a directory of
# the caller's, listening on 127.0.0.1 only, on a free port. Installs
# PostgreSQL from Debian's packages if it is not on the machine.
#
#   scripts/pg.sh start DIR   starts it; prints its URL (superuser ferrokms,
#                             trust authentication on loopback)
#   scripts/pg.sh stop DIR    stops it (fast shutdown)
#   scripts/pg.sh restart DIR restarts it on the same port (fault tests)
#   scripts/pg.sh bindir      prints the server's bin directory
set -euo pipefail

bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
        echo "installing PostgreSQL from Debian's packages" >&2
        export DEBIAN_FRONTEND=noninteractive
        local sudo=""
        if [ "$(id -u)" != 0 ]; then sudo="sudo -n"; fi
        $sudo apt-get update -qq >&2
        $sudo apt-get install -y -qq postgresql >&2
        d=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    fi
    echo "$d"
}

# PostgreSQL refuses to run as root: use its own system user then.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cmd=${1:-}
case "$cmd" in
bindir)
    bindir
    ;;
start)
    dir=$2
    bin=$(bindir)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    if [ ! -f "$dir/PG_VERSION" ]; then
        as_pg "$bin/initdb" -D "$dir" -U ferrokms -A trust --no-sync -E UTF8 >"$dir.initdb.log" 2>&1 \
            || { cat "$dir.initdb.log" >&2; exit 1; }
    fi
    port=$(free_port)
    echo "$port" > "$dir/ferrokms-port"
    as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=on" \
        start >/dev/null
    echo "postgres://ferrokms@127.0.0.1:$port/postgres"
    ;;
restart)
    dir=$2
    bin=$(bindir)
    port=$(cat "$dir/ferrokms-port")
    as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 30 -m fast \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=on" \
        restart >/dev/null
    ;;
stop)
    dir=$2
    bin=$(bindir)
    as_pg "$bin/pg_ctl" -D "$dir" -w -t 30 -m fast stop >/dev/null || true
    ;;
*)
    echo "usage: $0 start|stop|restart DIR | bindir" >&2
    exit 2
    ;;
esac
