#!/bin/bash
# One jaxai run over several GPU machines without a scheduler: run this on every machine, each with its
# own NODE_RANK (0 on the machine whose address is COORDINATOR). Each process uses all local GPUs.
#
#   NNODES=2 NODE_RANK=0 COORDINATOR=10.0.0.1:12345 launch/gpu_multinode.sh configs/cifar10_resnet.py /nfs/runs/r18
#   NNODES=2 NODE_RANK=1 COORDINATOR=10.0.0.1:12345 launch/gpu_multinode.sh configs/cifar10_resnet.py /nfs/runs/r18
#
# The workdir must be on a filesystem both machines see. Processes other than 0 wait up to
# DISTRIBUTED_TIMEOUT_S (default 300) for the coordinator, then stop with a clear error. SIGTERM to every
# process (e.g. `pkill -TERM -f jaxai.main` on each machine) saves a checkpoint at a common step and exits;
# the same commands resume.
set -euo pipefail
: "${NNODES:?set NNODES to the number of machines}"
: "${NODE_RANK:?set NODE_RANK to the index of this machine, 0 to NNODES-1}"
: "${COORDINATOR:?set COORDINATOR to host:port of the NODE_RANK=0 machine}"
if [[ $# -lt 2 ]]; then
  echo "usage: NNODES=.. NODE_RANK=.. COORDINATOR=host:port launch/gpu_multinode.sh CONFIG WORKDIR [--config.k=v ...]" >&2
  exit 2
fi
CONFIG=$1 WORKDIR=$2
shift 2
cd "$(dirname "$0")/.."
exec python -m jaxai.main --config="$CONFIG" --workdir="$WORKDIR" --coordinator_address="$COORDINATOR" \
  --num_processes="$NNODES" --process_id="$NODE_RANK" \
  --distributed_timeout_s="${DISTRIBUTED_TIMEOUT_S:-300}" "$@"
