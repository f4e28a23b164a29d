#!/usr/bin/env bash
# End-to-end test of `mnemo slurm`: start a one-node Slurm cluster on localhost (Debian's
# slurm-wlm and munge; config, state and logs in a temporary folder), submit a 4-shard
# counterfactual job array with its dependent merge job, wait, and compare the merged
# files with an unsharded run byte for byte. Prints "skipped: ..." and exits 0 where
# Slurm cannot start (not root, no apt, daemons refusing). MNEMO_BIN overrides the binary.
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
skip() { echo "slurm e2e: skipped: $*"; exit 0; }

if [ -n "${MNEMO_BIN:-}" ]; then
  mnemo="$MNEMO_BIN"
else
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mnemo-target}"
  cargo build --release -q -p mnemo-cli || { echo "slurm e2e: 0 passed, 1 failed (build)"; exit 1; }
  mnemo="$CARGO_TARGET_DIR/release/mnemo"
fi

[ "$(id -u)" = 0 ] || skip "needs root to start slurmctld, slurmd and munged"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || skip "slurm-wlm and munge are not installed and there is no apt-get"
  echo "slurm e2e: installing slurm-wlm and munge (apt)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; } >/dev/null 2>&1 \
    || skip "apt-get could not install slurm-wlm and munge"
fi

tmp=$(mktemp -d /tmp/mnemo-slurm.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT

# munge: its own key and socket in the temporary folder.
mkdir -p "$tmp/munge"
chmod 700 "$tmp/munge"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge/munge.key"
sock="$tmp/munge/munge.socket"
munged --force --foreground --key-file="$tmp/munge/munge.key" --socket="$sock" \
  --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" \
  --seed-file="$tmp/munge/munged.seed" >"$tmp/munge/out.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || skip "munged did not start: $(tail -3 "$tmp/munge/out.log" "$tmp/munge/munged.log" 2>/dev/null)"

cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
mkdir -p "$tmp/state" "$tmp/spool"
cat >"$tmp/slurm.conf" <<CONF
ClusterName=mnemo-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
cat >"$tmp/cgroup.conf" <<CONF
CgroupPlugin=autodetect
IgnoreSystemd=yes
CONF
export SLURM_CONF="$tmp/slurm.conf"

slurmctld -D -i -f "$SLURM_CONF" >"$tmp/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -N localhost -f "$SLURM_CONF" >"$tmp/slurmd.out" 2>&1 &
pids+=($!)
state=""
for _ in $(seq 60); do
  state=$(sinfo -h -N -o %t 2>/dev/null | head -1)
  [ "$state" = idle ] && break
  sleep 1
done
if [ "$state" != idle ]; then
  skip "the node did not become idle (state '${state:-none}'): $(tail -3 "$tmp/slurmctld.log" "$tmp/slurmd.log" "$tmp/slurmd.out" 2>/dev/null | tr '\n' ' ')"
fi
echo "slurm e2e: one-node cluster up ($cpus CPUs) in $(( $(date +%s) - start )) s"

# The counterfactual demo (25 epochs) with 4 models.
"$mnemo" spec --counterfactual >"$tmp/cf.json"

t0=$(date +%s)
"$mnemo" counterfactual --quiet --models 4 --spec "$tmp/cf.json" --out "$tmp/whole" 2>"$tmp/whole.log" \
  || { cat "$tmp/whole.log"; echo "slurm e2e: 0 passed, 1 failed (unsharded run)"; exit 1; }
unsharded=$(( $(date +%s) - t0 ))

t0=$(date +%s)
"$mnemo" slurm --spec "$tmp/cf.json" --command counterfactual --shards 4 --time 0:20:00 \
  --out "$tmp/run" -- --models 4 || { echo "slurm e2e: 0 passed, 1 failed (mnemo slurm)"; exit 1; }
submitted=$(bash "$tmp/run/submit.sh") || { echo "slurm e2e: 0 passed, 1 failed (submit: $submitted)"; exit 1; }
echo "slurm e2e: $submitted"
merge_id=$(echo "$submitted" | sed -n 's/.*merge job \([0-9]*\).*/\1/p')
for _ in $(seq 600); do
  [ -z "$(squeue -h -j "$merge_id" 2>/dev/null)" ] && break
  sleep 1
done
sharded=$(( $(date +%s) - t0 ))

passed=0; failed=0
check() { if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $*"; fi; }
check test -f "$tmp/run/result/counterfactual.csv"
for i in 1 2 3 4; do check test -f "$tmp/run/shards/$i/shard.json"; done
for f in counterfactual.csv influence.csv counterfactual.json spec.json mem_histogram.svg in_out.svg; do
  check cmp -s "$tmp/whole/$f" "$tmp/run/result/$f"
done
if [ "$failed" -gt 0 ]; then
  tail -5 "$tmp"/run/logs/*.out "$tmp/slurmctld.log" 2>/dev/null
fi
echo "slurm e2e: $passed passed, $failed failed; unsharded run ${unsharded} s, 4-shard Slurm array + merge ${sharded} s, whole test $(( $(date +%s) - start )) s"
[ "$failed" = 0 ]
