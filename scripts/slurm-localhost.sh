#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine, for the `slurm` tests
# (`make test-slurm`) and for trying `resdiff fig --executor slurm` without a cluster.
#
#   scripts/slurm-localhost.sh start   # install (Debian, as root), start munge + slurm
#   scripts/slurm-localhost.sh stop    # stop the daemons this script started
#   scripts/slurm-localhost.sh env     # print `export SLURM_CONF=...` for this cluster
#
# Everything lives under $RESDIFF_SLURM_DIR (default /tmp/resdiff-slurm): slurm.conf,
# state, spool, pid and log files. The configuration is the minimum a container
# allows: proctrack/linuxproc, task/none, no cgroups, no accounting; one node (this
# host, all its CPUs) in one partition `debug`. It needs root (slurmd runs as root).
# On failure it prints the daemon's own log lines and exits 1.
set -euo pipefail

DIR=${RESDIFF_SLURM_DIR:-/tmp/resdiff-slurm}
CONF=$DIR/slurm.conf
HOST=$(hostname -s)

log_tail() {  # the daemons' own words, for the test's skip message
    for f in "$DIR"/munged.log "$DIR"/slurmctld.log "$DIR"/slurmd.log; do
        [ -s "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
    done
    return 0
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v munged >/dev/null \
            && command -v sbatch >/dev/null; then
        return
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "slurm-localhost: slurm-wlm and munge are not installed and this is not" \
             "root on a Debian-like system (apt-get install slurm-wlm munge)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_conf() {
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/munge"
    local cpus mem
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
    cat > "$CONF" <<EOF
ClusterName=resdiff-localhost
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=$HOST CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    # task/none and proctrack/linuxproc need no cgroup.conf; an empty one stops slurmd
    # from looking for /etc/slurm/cgroup.conf
    : > "$DIR/cgroup.conf"
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return  # a munged is already serving this host
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chmod 0400 /etc/munge/munge.key
    chown root:root /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    # as root: --force accepts root-owned key and directories
    if ! munged --force --key-file=/etc/munge/munge.key \
            --socket=/run/munge/munge.socket.2 --pid-file="$DIR/munged.pid" \
            --log-file="$DIR/munged.log" --seed-file="$DIR/munge/seed" >>"$DIR/munged.log" 2>&1; then
        echo "slurm-localhost: munged did not start" >&2
        log_tail >&2
        exit 1
    fi
    for _ in $(seq 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.5
    done
    echo "slurm-localhost: munged started but does not answer" >&2
    log_tail >&2
    exit 1
}

start_slurm() {
    export SLURM_CONF=$CONF
    if scontrol ping 2>/dev/null | grep -q UP \
            && sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then
        return  # already running with this configuration
    fi
    rm -f "$DIR"/slurmctld.log "$DIR"/slurmd.log
    if ! slurmctld -c -f "$CONF" >>"$DIR/slurmctld.log" 2>&1; then
        echo "slurm-localhost: slurmctld did not start" >&2
        log_tail >&2
        exit 1
    fi
    if ! slurmd -f "$CONF" >>"$DIR/slurmd.log" 2>&1; then
        echo "slurm-localhost: slurmd did not start" >&2
        log_tail >&2
        exit 1
    fi
    for _ in $(seq 60); do
        if sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then
            echo "slurm-localhost: up (SLURM_CONF=$CONF, node $HOST, $(nproc) CPUs)" >&2
            return
        fi
        sleep 0.5
    done
    echo "slurm-localhost: the node did not become idle within 30 s" \
         "($(sinfo -h -o '%T %E' 2>&1 | head -n 1))" >&2
    log_tail >&2
    exit 1
}

stop_all() {
    for name in slurmd slurmctld munged; do
        pidfile=$DIR/$name.pid
        if [ -s "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
            rm -f "$pidfile"
        fi
    done
}

case "${1:-start}" in
    start) install_packages; write_conf; start_munge; start_slurm ;;
    stop) stop_all ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
