#!/bin/bash
# One jaxai run on a Cloud TPU pod slice (e.g. v5p-32: 4 hosts): the same command on every host VM.
#
#   launch/tpu_pod.sh TPU_NAME ZONE configs/cifar10_resnet.py /mnt/runs/cifar_r18 [--config.k=v ...]
#
# Copies this checkout to every host, installs it with the TPU build of JAX, then starts jaxai.main with
# --distributed=cluster: JAX learns the hosts, the coordinator and each host's id from the TPU metadata.
# The workdir must be shared by all hosts (e.g. a bucket mounted with gcsfuse at the same path on each).
# Preemptible / spot TPU VMs get SIGTERM before they stop: the run saves at a common step and exits;
# running this script again (after the slice is recreated) resumes from the latest checkpoint.
set -euo pipefail
if [[ $# -lt 4 ]]; then
  echo "usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [--config.key=value ...]" >&2
  exit 2
fi
TPU_NAME=$1 ZONE=$2 CONFIG=$3 WORKDIR=$4
shift 4
REPO=$(cd "$(dirname "$0")/.." && pwd)
gcloud compute tpus tpu-vm scp --recurse --zone="$ZONE" --worker=all "$REPO" "$TPU_NAME":~/jaxai
printf -v EXTRA ' %q' "$@"
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command="\
  cd ~/jaxai && pip install -q -e '.[tpu]' && \
  python -m jaxai.main --distributed=cluster --config=$CONFIG --workdir=$WORKDIR$EXTRA"
