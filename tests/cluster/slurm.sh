#!/usr/bin/env bash
# A throwaway single-node Slurm cluster with job accounting, for the cluster tests.
#
#   tests/cluster/slurm.sh install   apt packages (slurm-wlm, munge, slurmdbd, mariadb-server)
#   tests/cluster/slurm.sh up        start mariadbd, munged, slurmdbd, slurmctld, slurmd
#   tests/cluster/slurm.sh env       print `export SLURM_CONF=...` for the clients (sbatch, ...)
#   tests/cluster/slurm.sh down      cancel every job, stop the daemons started by `up`, and
#                                    remove the state directory
#
# Needs root (slurmd runs jobs as their user; munged runs as `munge`). Everything lives in
# $PGBENCH_SLURM_DIR (default /tmp/pgbench-slurm): configs, state, logs, the database. Under
# /etc it adds only the symlink /etc/slurm/slurm.conf (removed by `down`; `up` refuses to run
# where a Slurm config exists) and the munge key if Debian's package did not make one. The
# daemons listen on 127.0.0.1 only, on ports 6817-6819 (Slurm) and 33061 (MariaDB).
#
# Why slurmdbd and MariaDB: the tests read the accounting records (sacct) to check that every
# job went through sbatch and completed; squeue forgets a job MinJobAge seconds after it ends.
# Real clusters keep accounting too. The profile itself asks squeue for job states (see
# workflow/profiles/slurm/config.yaml), which would work without accounting.
set -euo pipefail

DIR=${PGBENCH_SLURM_DIR:-/tmp/pgbench-slurm}
CLUSTER=pgbenchci
DB_PORT=33061
DB_PASS=pgbench-ci-only   # a throwaway database on 127.0.0.1, removed by `down`

die() { echo "slurm.sh: $*" >&2; exit 1; }

install_packages() {
  [ "$(id -u)" = 0 ] || die "install needs root"
  local missing=()
  command -v slurmctld >/dev/null || missing+=(slurm-wlm)
  command -v munged >/dev/null || missing+=(munge)
  command -v slurmdbd >/dev/null || missing+=(slurmdbd)
  command -v mariadbd >/dev/null || missing+=(mariadb-server)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Wait until "$@" succeeds, for up to $1 seconds.
wait_for() {
  local seconds=$1; shift
  for _ in $(seq $((seconds * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  return 1
}

write_configs() {
  local node cpus mem
  node=$(hostname -s)
  cpus=$(nproc)
  # The profile asks 8 GB for aggregate; a smaller CI machine declares 16 GB anyway
  # (config_overrides below). Nothing enforces memory here (task/none, no cgroups).
  mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
  [ "$mem" -ge 16384 ] || mem=16384
  mkdir -p "$DIR"/{etc,state,spool,log,run,db}
  cat > "$DIR/etc/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
SlurmdParameters=config_overrides
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStoreFlags=job_comment
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat > "$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=$node
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$DIR/etc/slurmdbd.conf"   # slurmdbd refuses a config others can read
}

start_mariadb() {
  # mariadbd runs as `mysql`: its data, socket, pid and log live in $DIR/db, which it owns
  local db=$DIR/db
  chown mysql:mysql "$db"
  mariadb-install-db --user=mysql --datadir="$db/data" --auth-root-authentication-method=socket \
    --skip-test-db > "$DIR/log/mariadb-install.log" 2>&1
  # not `--daemonize`: setsid + & keeps its pid in our pidfile
  setsid mariadbd --no-defaults --user=mysql --datadir="$db/data" --socket="$db/mysql.sock" \
    --pid-file="$db/mariadbd.pid" --bind-address=127.0.0.1 --port=$DB_PORT \
    --skip-name-resolve --log-error="$db/mariadbd.log" </dev/null >/dev/null 2>&1 &
  wait_for 60 mariadb --no-defaults --socket="$db/mysql.sock" -e 'select 1' \
    || die "mariadbd did not start; see $db/mariadbd.log"
  mariadb --no-defaults --socket="$db/mysql.sock" <<EOF
CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "slurm.sh: using the munged already running"
    return
  fi
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- munged --force
  touch "$DIR/run/munged.ours"   # `down` stops munged only when `up` started it
  wait_for 20 sh -c 'munge -n | unmunge' || die "munged did not start; see /var/log/munge/munged.log"
}

up() {
  [ "$(id -u)" = 0 ] || die "up needs root"
  [ ! -e "$DIR/run" ] || die "$DIR exists: run '$0 down' first"
  # Snakemake's jobstep plugin drops SLURM_* variables, SLURM_CONF too, before the `srun` it
  # runs inside each job: `srun` must find the config at the default path.
  [ ! -e /etc/slurm/slurm.conf ] || die "/etc/slurm/slurm.conf exists: this machine already has a \
Slurm config, and the test cluster would replace it; run the cluster tests on a throwaway machine"
  export SLURM_CONF="$DIR/etc/slurm.conf"
  write_configs
  mkdir -p /etc/slurm
  ln -s "$SLURM_CONF" /etc/slurm/slurm.conf
  touch "$DIR/run/etc-slurm-conf.ours"
  start_munge
  start_mariadb
  slurmdbd
  wait_for 60 sacctmgr -n list cluster || die "slurmdbd did not start; see $DIR/log/slurmdbd.log"
  sacctmgr -i add cluster "$CLUSTER" >/dev/null
  slurmctld
  wait_for 60 scontrol ping || die "slurmctld did not start; see $DIR/log/slurmctld.log"
  slurmd
  wait_for 60 sh -c "sinfo -h -o %T | grep -qx idle" \
    || die "the node did not become idle; see $DIR/log/slurmd.log"
  echo "slurm.sh: cluster $CLUSTER is up ($(nproc) CPUs); clients need: export SLURM_CONF=$SLURM_CONF"
}

stop_pidfile() {
  local file=$1 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  if kill "$pid" 2>/dev/null; then
    wait_for 30 sh -c "! kill -0 $pid" || { kill -9 "$pid" 2>/dev/null || true; }
  fi
}

down() {
  [ -d "$DIR" ] || { echo "slurm.sh: nothing to tear down ($DIR does not exist)"; return 0; }
  export SLURM_CONF="$DIR/etc/slurm.conf"
  if [ -s "$DIR/run/slurmctld.pid" ]; then
    scancel --full --user=root >/dev/null 2>&1 || true
    wait_for 20 sh -c '[ -z "$(squeue -h 2>/dev/null)" ]' || true
  fi
  for daemon in slurmd slurmctld slurmdbd; do
    stop_pidfile "$DIR/run/$daemon.pid"
  done
  stop_pidfile "$DIR/db/mariadbd.pid"
  if [ -e "$DIR/run/munged.ours" ]; then
    runuser -u munge -- munged --stop >/dev/null 2>&1 || true
  fi
  if [ -e "$DIR/run/etc-slurm-conf.ours" ] && [ -L /etc/slurm/slurm.conf ]; then
    rm -f /etc/slurm/slurm.conf
  fi
  # only what `up` made: $DIR itself may be a directory the user owns
  rm -rf "${DIR:?}"/{etc,state,spool,log,run,db}
  rmdir "$DIR" 2>/dev/null || true
  echo "slurm.sh: stopped; $DIR removed"
}

case ${1:-} in
  install) install_packages ;;
  up) up ;;
  down) down ;;
  env) echo "export SLURM_CONF=$DIR/etc/slurm.conf" ;;
  *) die "usage: $0 install|up|down|env" ;;
esac
