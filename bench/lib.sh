# Sourced by the bench scripts (`. "$(dirname "$0")/lib.sh"`): what each of
# them needs to leave no process behind.
#
# PIDS holds every process a script starts; stop_started stops them all:
# SIGTERM to each, then SIGKILL to any still alive after 5 s. Scripts call
# it from their EXIT trap, so a bench that fails or is interrupted stops its
# servers too.

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
