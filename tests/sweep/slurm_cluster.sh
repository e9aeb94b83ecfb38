# tests/sweep/slurm_cluster.sh — start and stop a throw-away single-node Slurm
# cluster for the sweep tests, without systemd.  Sourced by bash scripts.
#
#   cluster_start DIR   munged (as the munge user, its own socket), slurmctld
#                       and slurmd with a minimal slurm.conf written under DIR;
#                       exports SLURM_CONF; returns non-zero with a message if
#                       the cluster does not come up
#   cluster_stop        stops the daemons it started, by PID
#
# Only loopback is used: SlurmctldHost and the node address are 127.0.0.1,
# and the ports are picked from this shell's PID so that two test runs on one
# machine do not collide.

cluster_pids=()

cluster_why_not() {
    local tool
    for tool in munged slurmctld slurmd sbatch squeue scontrol; do
        command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found (Debian: slurm-wlm, munge)"; return 0; }
    done
    [ "$(id -u)" -eq 0 ] || { echo "not root: slurmd must run as root"; return 0; }
    id munge >/dev/null 2>&1 || { echo "no munge user"; return 0; }
    [ -r /etc/munge/munge.key ] || { echo "no /etc/munge/munge.key"; return 0; }
    return 1
}

# Waits up to $2 tenths of a second for command $1 to succeed.
cluster_wait() {
    local i
    for ((i = 0; i < $2; i++)); do
        eval "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

cluster_start() {
    local dir=$1 port
    mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
    chown munge:munge "$dir/munge"
    chmod 0755 "$dir" "$dir/munge"
    mkdir -p /run/munge && chown munge:munge /run/munge
    # munged refuses to run unless its socket directory is owned by munge.
    runuser -u munge -- munged --foreground --force --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed" >"$dir/munged.out" 2>&1 &
    cluster_pids+=($!)
    cluster_wait "[ -S '$dir/munge/munge.socket' ]" 50 || { echo "munged did not start:"; cat "$dir/munged.out"; return 1; }

    port=$((20000 + ($$ % 10000) * 2))
    local node
    node=$(slurmd -C | head -n 1)
    cat > "$dir/slurm.conf" <<CONF
ClusterName=symlabtest
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SchedulerParameters=sched_interval=1
$node NodeAddr=127.0.0.1
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF=$dir/slurm.conf
    slurmctld -D -f "$dir/slurm.conf" -i >"$dir/slurmctld.out" 2>&1 &
    cluster_pids+=($!)
    slurmd -D -f "$dir/slurm.conf" >"$dir/slurmd.out" 2>&1 &
    cluster_pids+=($!)
    cluster_wait "sinfo -h -o %t | grep -Eq '^(idle|mix|alloc)'" 300 || {
        echo "the cluster did not come up in 30 s:"; tail -n 20 "$dir"/slurmctld.log "$dir"/slurmd.log; return 1; }
}

cluster_stop() {
    local pid i
    for ((i = ${#cluster_pids[@]} - 1; i >= 0; i--)); do
        pid=${cluster_pids[i]}
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    cluster_pids=()
}
