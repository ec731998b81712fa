#!/usr/bin/env bash
# CI: a single-node Slurm cluster on localhost, for the Slurm executor's tests (test/runner/slurm*.test.ts).
# Installs Debian's munge, slurmctld, slurmd and slurm-client, writes /etc/slurm/slurm.conf, starts munged,
# slurmctld and slurmd (no systemd, no accounting: the executor needs neither), and waits until `sinfo` shows
# the node idle. Idempotent: with the cluster up it does nothing. Must run as root.
# Usage: .ci/slurm-setup.sh [--stop]     (SLURM_SETUP_TIMEOUT: seconds to wait for the node, default 60)
set -euo pipefail

timeout_s="${SLURM_SETUP_TIMEOUT:-60}"

node_up() {
  sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|mix|allocated|alloc)'
}

# A daemon is running when its pid file names a live process (ours only: never matched by name).
running() {
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

if [ "${1:-}" = "--stop" ]; then
  for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
    if running "$pidfile"; then kill "$(cat "$pidfile")"; fi
  done
  exit 0
fi

if node_up; then
  echo "slurm-setup: a Slurm node is already up"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "slurm-setup: needs root to install and start Slurm" >&2
  exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
fi

# munge: the key, then the daemon.
mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile /etc/munge/munge.key 2>/dev/null \
  || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
chmod 400 /etc/munge/munge.key
running /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged --force
munge -n | unmunge | grep -q 'STATUS.*Success'

# slurm.conf. DefMemPerCPU: without it a job that asks no memory is given the whole node, and jobs run one at a
# time. MinJobAge keeps finished jobs visible to `squeue --states=all` for 5 minutes (how the executor learns
# TIMEOUT or OUT_OF_MEMORY without sacct).
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 - 512 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=localcluster
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
ReturnToService=2
MinJobAge=300
MaxArraySize=10001
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

running /run/slurmctld.pid || /usr/sbin/slurmctld
running /run/slurmd.pid || /usr/sbin/slurmd

deadline=$(( $(date +%s) + timeout_s ))
until node_up; do
  # A node left drained or down by an earlier cluster on this machine is put back to work.
  if sinfo -h -o '%T' 2>/dev/null | grep -qE 'drain|down'; then
    scontrol update nodename=localhost state=resume 2>/dev/null || true
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "slurm-setup: the node is not idle after ${timeout_s} s:" >&2
    sinfo >&2 || true
    tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
    exit 1
  fi
  sleep 1
done
sinfo
