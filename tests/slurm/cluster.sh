#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests and for trying `hydra/launcher=slurm` without a cluster.
#
#   tests/slurm/cluster.sh up      install (Debian: slurmctld slurmd slurm-client munge) if needed, start munged,
#                                  slurmctld and slurmd, wait until the node is idle; prints `export SLURM_CONF=...`
#   tests/slurm/cluster.sh down    stop the daemons this script started (by their pid files)
#   tests/slurm/cluster.sh status  exit 0 when the cluster answers
#
# Exit status: 0 done, 2 cannot (not root, no apt-get), 3 the packages could not be installed, 1 anything else.
# Needs root (the daemons run as root: SlurmUser=root). Everything lives in $FASTGRAD_SLURM_DIR
# (default /tmp/fastgrad-slurm): slurm.conf, state, spool, logs, pid files. Nothing in /etc is changed
# apart from what the Debian packages install; clients find the cluster through SLURM_CONF.
# What worked on these machines: DESIGN.md, "A real SLURM in tests".
set -euo pipefail

STATE=${FASTGRAD_SLURM_DIR:-/tmp/fastgrad-slurm}
CONF=$STATE/slurm.conf
export SLURM_CONF=$CONF

log() { echo "slurm-cluster: $*" >&2; }

answers() { timeout 5 sinfo -h -o %T 2>/dev/null | grep -q -E '^(idle|mixed|allocated)'; }

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null && return 0
    [[ $(id -u) == 0 ]] || { log "not root: cannot install slurm (apt-get install slurmctld slurmd slurm-client munge)"; exit 2; }
    command -v apt-get >/dev/null || { log "no apt-get: install slurmctld, slurmd, slurm-client and munge yourself"; exit 2; }
    log "installing slurmctld slurmd slurm-client munge"
    # exit 3: the packages could not be had (no registry reachable): the tests skip, saying so
    # time-limited, so a machine without a reachable registry skips instead of hanging the tests
    timeout 180 apt-get -o Acquire::http::Timeout=20 -o Acquire::Retries=1 update -qq >/dev/null \
        || { log "apt-get update failed"; exit 3; }
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get -o Acquire::http::Timeout=20 install -y -qq \
        slurmctld slurmd slurm-client munge >/dev/null || { log "apt-get install failed"; exit 3; }
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
    [[ -f /etc/munge/munge.key ]] || { /usr/sbin/mungekey --create 2>/dev/null || /usr/sbin/create-munge-key; }
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge/munge.key
    chmod 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    echo /run/munge/munged.pid > "$STATE/started-munged"
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.1; done
    log "munged did not come up"; exit 1
}

write_conf() {
    local host node
    host=$(hostname -s)
    # CPUs, sockets, cores and RealMemory exactly as slurmd sees this machine.
    node=$(slurmd -C | head -n 1)
    mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/log"
    cat > "$CONF" <<CONF
# Written by tests/slurm/cluster.sh: a one-node cluster for tests.
ClusterName=fastgrad
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job may start again only once its credential has expired (default 120 s): short, for quick tests.
AuthInfo=cred_expire=5
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=60
SchedulerParameters=sched_interval=1
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
}

up() {
    mkdir -p "$STATE"
    if alive "$STATE/slurmctld.pid" && answers; then log "already up ($CONF)"; echo "export SLURM_CONF=$CONF"; return 0; fi
    [[ $(id -u) == 0 ]] || { log "needs root (the daemons run as SlurmUser=root)"; exit 2; }
    install_packages
    start_munge
    write_conf
    /usr/sbin/slurmctld -f "$CONF" -i
    /usr/sbin/slurmd -f "$CONF"
    for _ in $(seq 150); do
        if answers; then log "up: $(sinfo -h -o '%P %D %T %c CPUs %m MB')"; echo "export SLURM_CONF=$CONF"; return 0; fi
        sleep 0.2
    done
    log "the node did not become idle; see $STATE/log"; sinfo -R >&2 || true; exit 1
}

stop_pidfile() {
    local file=$1
    alive "$file" || { rm -f "$file"; return 0; }
    local pid; pid=$(cat "$file")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { rm -f "$file"; return 0; }; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$file"
}

down() {
    stop_pidfile "$STATE/slurmd.pid"
    stop_pidfile "$STATE/slurmctld.pid"
    if [[ -f $STATE/started-munged ]]; then stop_pidfile "$(cat "$STATE/started-munged")"; rm -f "$STATE/started-munged"; fi
    log "down"
}

case ${1:-up} in
    up) up ;;
    down) down ;;
    status) answers ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
