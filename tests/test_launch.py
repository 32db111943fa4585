"""The launch/ scripts run as documented, with the cluster tools replaced by local stand-ins: a fake
`srun` starts the tasks as SLURM would (its environment variables), a fake `gcloud` records its calls."""
import os
import subprocess

import pytest

from tests.helpers import DATA_DIR, REPO_ROOT, checkpoint_steps, cli_env, free_port

TRAIN_ARGS = [f"--config.data_dir={DATA_DIR}", "--config.num_train_steps=3"]

FAKE_SRUN = """#!/bin/bash
# Starts SLURM_NTASKS copies of the command with the variables srun sets, like srun on one node.
while [[ $1 == --* ]]; do shift; done
for ((i = 0; i < SLURM_NTASKS; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_STEP_NODELIST=localhost "$@" &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
exit $status
"""


def _fake_tool(tmp_path, name, text):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir(exist_ok=True)
  (bin_dir / name).write_text(text)
  (bin_dir / name).chmod(0o755)
  return dict(cli_env(), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.extended  # the GPU multi-node script's two-process run below covers launch in the default run.
def test_slurm_template_runs_two_tasks_as_one_run(tmp_path):
  env = _fake_tool(tmp_path, "srun", FAKE_SRUN)
  env |= {"SLURM_JOB_ID": str(free_port() % 4096), "SLURM_NTASKS": "2", "SLURM_SUBMIT_DIR": str(REPO_ROOT)}
  workdir = tmp_path / "run"
  proc = subprocess.run(["bash", "launch/slurm.sbatch", "configs/mnist_cnn.py:tiny", str(workdir), *TRAIN_ARGS],
                        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "Joined SLURM: process 1 of 2" in proc.stderr and "2 processes" in proc.stderr, proc.stderr[-3000:]
  assert checkpoint_steps(workdir) == [3]


def test_slurm_template_without_arguments_prints_usage(tmp_path):
  proc = subprocess.run(["bash", "launch/slurm.sbatch"], cwd=REPO_ROOT, capture_output=True, text=True)
  assert proc.returncode == 2 and "usage: sbatch" in proc.stderr


def test_gpu_multinode_script_on_two_local_processes(tmp_path):
  coordinator, workdir = f"127.0.0.1:{free_port()}", tmp_path / "run"
  procs = [subprocess.Popen(["bash", "launch/gpu_multinode.sh", "configs/mnist_cnn.py:tiny", str(workdir),
                             *TRAIN_ARGS], cwd=REPO_ROOT, text=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE,
                            env=dict(cli_env(), NNODES="2", NODE_RANK=str(i), COORDINATOR=coordinator))
           for i in range(2)]
  errs = [p.communicate(timeout=300)[1] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-2000:] for e in errs)
  assert "2 processes" in errs[0] and checkpoint_steps(workdir) == [3]


def test_gpu_multinode_script_names_a_missing_variable(tmp_path):
  proc = subprocess.run(["bash", "launch/gpu_multinode.sh", "configs/mnist_cnn.py", str(tmp_path)],
                        cwd=REPO_ROOT, env=dict(cli_env(), NNODES="2"), capture_output=True, text=True)
  assert proc.returncode != 0 and "NODE_RANK" in proc.stderr


def test_tpu_pod_script_copies_the_checkout_and_starts_every_worker(tmp_path):
  log = tmp_path / "gcloud.log"
  env = _fake_tool(tmp_path, "gcloud", f'#!/bin/bash\nprintf "%s\\n" "$*" >> {log}\n')
  proc = subprocess.run(["bash", "launch/tpu_pod.sh", "my-tpu", "us-central2-b", "configs/mnist_cnn.py",
                         "/mnt/runs/r1", "--config.batch_size=1024"], cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=60)
  assert proc.returncode == 0, proc.stderr
  scp, ssh = log.read_text().splitlines()
  assert scp.startswith("compute tpus tpu-vm scp") and "--worker=all" in scp and "my-tpu:~/jaxai" in scp
  assert ssh.startswith("compute tpus tpu-vm ssh my-tpu --zone=us-central2-b --worker=all")
  assert ("python -m jaxai.main --distributed=cluster --config=configs/mnist_cnn.py --workdir=/mnt/runs/r1 "
          "--config.batch_size=1024") in ssh
