# Sourced by the bench scripts (`. "$(dirname "$0")/lib.sh"`): what each of
# them needs to leave no process behind.
#
# PIDS holds every process a script starts; stop_started stops them all:
# SIGTERM to each, then SIGKILL to any still alive after 5 s. Scripts call
# it from their EXIT trap, so a bench that fails or is interrupted stops its
# servers too. wait_for_url waits for a server they started to listen.

PIDS=()

stop_started() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
}

# wait_for_url LOG PID [SECONDS] [PATTERN]: prints the first
# http(s)://127.0.0.1:PORT of the line of LOG matching PATTERN (default: a
# "listening on http(s)://" line, which ferrokms and ferrokms-ceiling both
# print) once it appears; fails, showing LOG (and LOG's sibling "err" file,
# if any), when PID exits first or after SECONDS (default 60).
wait_for_url() {
    local log=$1 pid=$2 seconds=${3:-60} pattern=${4:-'listening on https?://'}
    local url
    for _ in $(seq 1 $((seconds * 10))); do
        url="$(grep -E "$pattern" "$log" 2>/dev/null | grep -oE 'https?://127\.0\.0\.1:[0-9]+' | head -1 || true)"
        if [ -n "$url" ]; then
            echo "$url"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "server $pid exited; its output:" >&2
            cat "$log" "$(dirname "$log")/err" 2>/dev/null >&2 || true
            return 1
        fi
        sleep 0.1
    done
    echo "no '$pattern' in $log within $seconds s" >&2
    cat "$(dirname "$log")/err" 2>/dev/null >&2 || true
    return 1
}
