#!/usr/bin/env bash
# Start (or stop) a real single-node Slurm cluster on this machine, without systemd.
#
#   slurm/start-local-cluster.sh                  install if missing, start munge, MariaDB, slurmdbd,
#                                                 slurmctld (clean state), slurmd; wait until usable
#   slurm/start-local-cluster.sh --fake-gpus 2    same, and the node declares 2 GPU-shaped null devices
#   slurm/start-local-cluster.sh --stop           stop the five daemons (by pid file, never by name)
#
# Idempotent: with everything up and the same settings, a second call returns in well under a second.
# Changed settings (e.g. another --fake-gpus) restart slurmctld and slurmd only.
# Needs root (CI machines and this dev box run as root); Debian/Ubuntu with apt-get.
# Why each slurm.conf line is there: see slurm/README.md ("Try SLURM on one machine").
set -euo pipefail

FAKE_GPUS=0
ACTION=start
while [[ $# -gt 0 ]]; do
    case "$1" in
        --fake-gpus) FAKE_GPUS="${2:?--fake-gpus needs a number}"; shift 2 ;;
        --fake-gpus=*) FAKE_GPUS="${1#*=}"; shift ;;
        --stop) ACTION=stop; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "start-local-cluster.sh: unknown argument '$1' (expected --fake-gpus N or --stop)" >&2; exit 2 ;;
    esac
done
[[ "$FAKE_GPUS" =~ ^[0-9]+$ ]] || { echo "--fake-gpus: expected a whole number, got '$FAKE_GPUS'" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "start-local-cluster.sh: must run as root (it writes /etc/slurm and starts daemons)" >&2; exit 2; }

CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
CTLD_STATE=/var/spool/slurmctld
SLURMD_SPOOL=/var/spool/slurmd
MYSQL_RUN=/run/mysqld
HOST=$(hostname -s)
CLUSTER_NAME=meter-local

PID_MUNGE=/run/munge/munged.pid
PID_MARIADB=$MYSQL_RUN/mysqld.pid
PID_SLURMDBD=$RUN_DIR/slurmdbd.pid
PID_SLURMCTLD=$RUN_DIR/slurmctld.pid
PID_SLURMD=$RUN_DIR/slurmd.pid

say() { echo "[slurm-local] $*"; }
die() { echo "[slurm-local] error: $*" >&2; exit 1; }

# A killed daemon lingers as a zombie for a second or two: /proc/PID existing is not enough.
pid_alive() {
    local pid state
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

stop_pidfile() {  # name pidfile
    local name=$1 file=$2 pid i
    pid_alive "$file" || { rm -f "$file"; return 0; }
    pid=$(cat "$file")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        pid_alive "$file" || break
        sleep 0.1
    done
    if pid_alive "$file"; then
        say "$name ($pid) ignored SIGTERM for 10 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
    fi
    rm -f "$file"
    say "stopped $name"
}

wait_for() {  # seconds description command...
    local secs=$1 what=$2 i
    shift 2
    for i in $(seq 1 $((secs * 5))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    die "timed out after ${secs}s waiting for $what (logs: $LOG_DIR, /var/log/munge, $LOG_DIR/mariadb.log)"
}

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sinfo >/dev/null || missing+=(slurm-wlm)
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmdbd >/dev/null || missing+=(slurmdbd)
    command -v mariadbd >/dev/null || missing+=(mariadb-server)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Without --no-install-recommends slurm-wlm pulls ~34 plugin packages nobody needs here.
    apt-get install -y -qq --no-install-recommends slurm-wlm munge slurmdbd mariadb-server >/dev/null
}

node_line() {
    # slurmd -C prints the node's real CPUs/Boards/Sockets/Cores/Threads/RealMemory.
    local hw gres=""
    hw=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //')
    [[ "$FAKE_GPUS" -gt 0 ]] && gres=" Gres=gpu:$FAKE_GPUS"
    echo "NodeName=$HOST NodeAddr=127.0.0.1 $hw$gres State=UNKNOWN"
}

write_slurm_conf() {  # target file
    local gres_types=""
    [[ "$FAKE_GPUS" -gt 0 ]] && gres_types="GresTypes=gpu"
    cat > "$1" <<EOF
# Written by meter-harness slurm/start-local-cluster.sh (fake GPUs: $FAKE_GPUS). Rewritten on every start.
ClusterName=$CLUSTER_NAME
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# The default 120 s credential lifetime is also the wait before a requeued job may start again.
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
# Defaults (30 s / 60 s) delay a queued job by up to 30 s. kill_invalid_depend: a job whose
# afterok can never be met is cancelled instead of pending forever.
SchedulerParameters=bf_interval=1,sched_interval=1,kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
# Oversize requests fail at submit instead of pending forever.
EnforcePartLimits=ALL
MinJobAge=3600
ReturnToService=2
KillWait=5
JobRequeue=1
MaxArraySize=1001
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
StateSaveLocation=$CTLD_STATE
SlurmdSpoolDir=$SLURMD_SPOOL
SlurmctldPidFile=$PID_SLURMCTLD
SlurmdPidFile=$PID_SLURMD
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
$gres_types
$(node_line)
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
# A second partition with a time limit, so limit checks have something real to check against.
PartitionName=short Nodes=$HOST MaxTime=00:10:00 State=UP
EOF
}

write_gres_conf() {  # target file
    if [[ "$FAKE_GPUS" -gt 0 ]]; then
        # Null devices stand in for GPUs: without device files slurmd reports 0 GPUs and drains the node.
        echo "AutoDetect=off"
        echo "Name=gpu File=/dev/fakegpu[0-$((FAKE_GPUS - 1))]"
    else
        echo "AutoDetect=off"
    fi > "$1"
}

dbd_password() {
    local existing
    existing=$(sed -n 's/^StoragePass=//p' "$CONF_DIR/slurmdbd.conf" 2>/dev/null || true)
    if [[ -n "$existing" ]]; then echo "$existing"; else head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'; fi
}

write_slurmdbd_conf() {  # target file password
    cat > "$1" <<EOF
# Written by meter-harness slurm/start-local-cluster.sh. Must stay mode 600.
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$2
StorageLoc=slurm_acct_db
PidFile=$PID_SLURMDBD
LogFile=$LOG_DIR/slurmdbd.log
EOF
    chmod 600 "$1"
}

# Writes a config file only when its text changed; returns 0 when it did change.
update_file() {  # generated target
    if [[ -f "$2" ]] && cmp -s "$1" "$2"; then rm -f "$1"; return 1; fi
    mv "$1" "$2"
    return 0
}

make_fake_gpus() {
    local i
    for ((i = 0; i < FAKE_GPUS; i++)); do
        [[ -e /dev/fakegpu$i ]] || mknod /dev/fakegpu$i c 1 3
    done
}

start_munge() {
    pid_alive "$PID_MUNGE" && return 0
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    [[ -s /etc/munge/munge.key ]] || { mungekey --create --force; chown munge:munge /etc/munge/munge.key; }
    say "starting munged"
    su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=$PID_MUNGE"
    wait_for 10 "munge" sh -c 'munge -n | unmunge'
}

start_mariadb() {
    if ! pid_alive "$PID_MARIADB"; then
        install -d -o mysql -g mysql -m 0755 "$MYSQL_RUN"
        [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql >/dev/null
        say "starting mariadbd"
        setsid /usr/sbin/mariadbd --user=mysql --pid-file="$PID_MARIADB" --socket="$MYSQL_RUN/mysqld.sock" \
            </dev/null >>"$LOG_DIR/mariadb.log" 2>&1 &
        wait_for 30 "MariaDB" mariadb --socket="$MYSQL_RUN/mysqld.sock" -e 'SELECT 1'
    fi
    # The grants are idempotent; they also repair a database that lost the slurm user.
    mariadb --socket="$MYSQL_RUN/mysqld.sock" <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$1';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
}

start_slurmdbd() {  # restart?
    [[ "$1" == yes ]] && stop_pidfile slurmdbd "$PID_SLURMDBD"
    pid_alive "$PID_SLURMDBD" && return 0
    say "starting slurmdbd"
    slurmdbd
    wait_for 30 "slurmdbd (sacctmgr)" sacctmgr -n list cluster
}

start_controller_and_node() {  # restart?
    if [[ "$1" == yes ]]; then
        stop_pidfile slurmd "$PID_SLURMD"
        stop_pidfile slurmctld "$PID_SLURMCTLD"
    fi
    if ! pid_alive "$PID_SLURMCTLD"; then
        say "starting slurmctld (clean state)"
        # Clean state: a restart from saved state after a crash can drain the node ("Duplicate jobid").
        slurmctld -c
        wait_for 30 "slurmctld" scontrol ping
    fi
    if ! pid_alive "$PID_SLURMD"; then
        say "starting slurmd"
        slurmd
    fi
}

node_state() { sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -1; }

node_usable() {
    case "$(node_state)" in idle|mixed|allocated|completing) return 0 ;; *) return 1 ;; esac
}

wait_node_usable() {
    local i state resumed=no
    for i in $(seq 1 150); do
        node_usable && return 0
        state=$(node_state)
        if [[ "$resumed" == no && "$state" =~ drain|down ]]; then
            say "node is $state; resuming it once"
            scontrol update nodename="$HOST" state=resume 2>/dev/null || true
            resumed=yes
        fi
        sleep 0.2
    done
    die "node $HOST is '$(node_state)', not idle, after 30 s (see $LOG_DIR/slurmd.log and slurmctld.log)"
}

all_running() {
    pid_alive "$PID_MUNGE" && pid_alive "$PID_MARIADB" && pid_alive "$PID_SLURMDBD" \
        && pid_alive "$PID_SLURMCTLD" && pid_alive "$PID_SLURMD"
}

do_stop() {
    stop_pidfile slurmd "$PID_SLURMD"
    stop_pidfile slurmctld "$PID_SLURMCTLD"
    stop_pidfile slurmdbd "$PID_SLURMDBD"
    stop_pidfile mariadbd "$PID_MARIADB"
    stop_pidfile munged "$PID_MUNGE"
}

do_start() {
    local t0=$SECONDS tmp conf_changed=no dbd_changed=no password
    install_packages
    install -d -m 0755 "$CONF_DIR" "$LOG_DIR" "$RUN_DIR" "$CTLD_STATE" "$SLURMD_SPOOL"
    make_fake_gpus
    tmp=$(mktemp -d)
    write_slurm_conf "$tmp/slurm.conf"
    write_gres_conf "$tmp/gres.conf"
    password=$(dbd_password)
    write_slurmdbd_conf "$tmp/slurmdbd.conf" "$password"
    update_file "$tmp/slurm.conf" "$CONF_DIR/slurm.conf" && conf_changed=yes
    update_file "$tmp/gres.conf" "$CONF_DIR/gres.conf" && conf_changed=yes
    update_file "$tmp/slurmdbd.conf" "$CONF_DIR/slurmdbd.conf" && dbd_changed=yes
    rm -rf "$tmp"

    if [[ $conf_changed == no && $dbd_changed == no ]] && all_running && node_usable && sacct -n -X -S now >/dev/null 2>&1; then
        say "already running ($CLUSTER_NAME, node $HOST $(node_state), fake GPUs: $FAKE_GPUS)"
        return 0
    fi
    start_munge
    start_mariadb "$password"
    start_slurmdbd "$dbd_changed"
    start_controller_and_node "$conf_changed"
    wait_node_usable
    wait_for 30 "sacct" sacct -n -X -S now
    say "ready in $((SECONDS - t0)) s: cluster $CLUSTER_NAME, node $HOST $(node_state), fake GPUs: $FAKE_GPUS"
}

if [[ "$ACTION" == stop ]]; then do_stop; else do_start; fi
