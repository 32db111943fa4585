"""AlphaZero for Go: self-play targets, the train step, the player, and the CLI end to end (tiny configs)."""
import contextlib
import json
import logging
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxai.core import sharding, trainer
from jaxai.errors import UserError
from jaxai.go import gnugo, gtp
from jaxai.ops.replay import Window
from jaxai.tasks import alphazero
from tests.helpers import (REPO_ROOT, check_ok, checkpoint_steps, cli_command, cli_env, load_config,
                           metrics_lines, run_cli)


def tiny_config(**overrides):
  return load_config("go7_alphazero", overrides, set_data_dir=False)


@pytest.fixture(scope="module")
def tiny_task():
  """The tiny task and its initial state, compiled once for the tests below (the learning rate is
  the one test_train_step_fits_a_fixed_replay_window needs; self-play does not depend on it)."""
  config = tiny_config(**{"optimizer.learning_rate": 0.01})
  task = alphazero.make_task(config)
  return config, task, jax.jit(task.init)(jax.random.key(0))


def test_selfplay_emits_finished_positions_with_search_policy_and_outcome(tiny_task):
  config, task, state = tiny_task
  collect = jax.jit(task.source.collect)
  carry, chunks = task.source.init_carry(), []
  policy = {"params": state.params, "step": state.step}
  for i in range(6):  # 24 plies per game: the ring (12 plies) fills, then finished positions come out.
    carry, rows, metrics = collect(policy, carry, jax.random.key(i))
    chunks.append(jax.device_get(rows))
  rows = {k: np.concatenate([c[k] for c in chunks], 1) for k in chunks[0]}  # (G, 24, ...)
  g, t = config.num_games, 6 * config.moves_per_collect
  assert rows["policy"].shape == (g, t, 26) and rows["planes"].shape == (g, t, 5, 5, 5)
  # The first max_moves plies find an empty ring; from then on every position's game has ended.
  assert not rows["valid"][:, :config.max_moves].any() and rows["valid"][:, config.max_moves:].all()
  valid = rows["valid"]
  policy, legal, value = rows["policy"][valid], rows["legal"][valid], rows["value"][valid]
  np.testing.assert_allclose(policy.sum(-1), 1.0, atol=1e-5)
  assert (policy[~legal] == 0).all() and legal[:, -1].all()  # no weight on illegal moves; pass legal.
  assert set(np.unique(value)) <= {-1.0, 1.0}  # komi 7.5: no draws.
  planes = rows["planes"][valid]
  assert set(np.unique(planes)) <= {0, 1}
  # Outcome seen from black is the same for every position of one game; games start on an empty
  # board with black to move.
  black = 2 * rows["planes"][..., 0, 0, -1].astype(np.float32) - 1  # colour plane: 1 black to move.
  for game_rows in range(g):
    outcome = None
    for step in range(config.max_moves, t):
      start = rows["planes"][game_rows, step, ..., :2].sum() == 0 and black[game_rows, step] == 1
      seen = rows["value"][game_rows, step] * black[game_rows, step]
      if start or outcome is None:
        outcome = seen
      assert seen == outcome, (game_rows, step)


def test_train_step_fits_a_fixed_replay_window(tiny_task):
  """With no new positions, repeated train steps on the same small window lower both losses."""
  _, task, state = tiny_task
  n, actions = 32, 26
  rng = np.random.default_rng(0)
  legal = rng.random((n, actions)) < 0.6
  legal[:, -1] = True
  policy = np.eye(actions)[[rng.choice(np.flatnonzero(row)) for row in legal]] * legal  # one legal move each
  rows = {"planes": rng.integers(0, 2, (n, 5, 5, 5)).astype(np.int8),
          "policy": (policy / policy.sum(-1, keepdims=True)).astype(np.float32), "legal": legal,
          "value": rng.choice([-1.0, 1.0], n).astype(np.float32), "valid": np.ones(n, bool)}
  window = state.extra["replay"].add(rows)
  assert int(window.size) == n
  state = state.replace(extra=state.extra | {"replay": window})
  nothing = jax.tree.map(lambda x: jnp.zeros((1, 1) + x.shape[1:], x.dtype), rows)  # valid = False
  step = jax.jit(task.train_step)
  losses = []
  for i in range(60):
    state, metrics = step(state, nothing, jax.random.key(i))
    losses.append((float(metrics["policy_loss"]), float(metrics["value_loss"])))
  assert int(state.extra["replay"].size) == n  # invalid rows are not stored.
  first, last = np.mean(losses[:10], 0), np.mean(losses[-10:], 0)
  assert (last < 0.8 * first).all(), losses  # both heads learn.
  assert {"policy_loss", "value_loss", "replay_size", "learning"} <= set(metrics)


def test_replay_window_keeps_the_newest_valid_rows():
  window = Window.init(5, {"planes": np.zeros(2, np.int8), "policy": np.zeros(3, np.float32),
                           "legal": np.zeros(3, bool), "value": np.zeros((), np.float32)})
  for start in (0, 4):
    values = np.arange(start, start + 4, dtype=np.float32)
    rows = {"planes": np.zeros((4, 2), np.int8), "policy": np.zeros((4, 3), np.float32),
            "legal": np.ones((4, 3), bool), "value": values, "valid": values % 4 != 1}
    window = window.add(rows)
  kept = sorted(np.asarray(window.rows["value"])[np.asarray(window.valid)].tolist())
  assert kept == [2.0, 3.0, 4.0, 6.0, 7.0]  # rows 1 and 5 invalid; 0 was the oldest, overwritten.


def test_a_rule_splits_the_whole_replay_window_over_the_data_axis():
  """Every leaf of the window leads with its capacity, so one rule splits it (here over a 2-device
  `data` axis, shapes only); a capacity the axis does not divide is a UserError naming the leaf."""
  mesh = jax.sharding.AbstractMesh((2,), ("data",))
  rules = ((r"extra/replay/.*", ("data",)),)
  state = jax.eval_shape(alphazero.make_task(tiny_config()).init, jax.random.key(0))
  split = sharding.Placement(mesh, rules).split_leaves(state)
  window = [sharding.path_of(k) for k, _ in jax.tree_util.tree_flatten_with_path(state.extra["replay"])[0]]
  assert {f"extra/replay/{path}" for path in window} == set(split)  # rows/..., valid, serial
  assert set(split.values()) == {P("data")}
  odd = jax.eval_shape(alphazero.make_task(tiny_config(replay_size=255)).init, jax.random.key(0))
  with pytest.raises(UserError, match=r"extra/replay/.*255.*does not split evenly"):
    sharding.Placement(mesh, rules).state(odd)


def test_building_the_task_plays_compiles_and_starts_nothing(monkeypatch, caplog):
  """load_agent builds the task for its state layout: that must stay cheap (GNU Go is looked up, and
  everything compiled, at first use only)."""
  monkeypatch.setattr(gnugo, "find", lambda: pytest.fail("make_task looked for GNU Go"))
  with caplog.at_level("WARNING"), jax.log_compiles():
    task = alphazero.make_task(tiny_config(eval_gnugo_games=2))
  assert not [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling")]
  assert [type(e).__name__ for e in task.evaluators] == ["Evaluator", "HostEvaluator"]


def test_bad_settings_are_user_errors():
  with pytest.raises(UserError, match="replay_size"):
    alphazero.make_task(tiny_config(replay_size=8))
  with pytest.raises(UserError, match="policy"):
    alphazero.make_task(tiny_config(**{"search.policy": "alphabeta"}))
  with pytest.raises(UserError, match="board_size"):
    alphazero.make_task(tiny_config(board_size=4))


TRAINED_OVERRIDES = {"eval_gnugo_games": 2 if gnugo.available() else 0, "num_train_steps": 4,
                     "eval_every_steps": 2, "checkpoint_every_steps": 2}


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
  """The tiny config through the real command line on 2 devices (self-play split over the mesh,
  evaluation with GNU Go games): 4 steps (learning starts at step 3, once the 12-ply ring has
  filled), then resumed to 6 in this process (the same trainer as the command line's). The same
  run in 2 processes is test_two_processes_train_like_the_command_line (extended)."""
  workdir = tmp_path_factory.mktemp("go_tiny")
  check_ok(run_cli("go7_alphazero.py:tiny", workdir / "run", TRAINED_OVERRIDES, devices=2, data_dir=None,
                   timeout=900))
  first = checkpoint_steps(workdir / "run")
  config = tiny_config(**TRAINED_OVERRIDES | {"num_train_steps": 6, "eval_every_steps": 0})
  with caplog_at_info() as records:
    trainer.train_and_evaluate(config, str(workdir / "run"), alphazero.make_task(config))
  return workdir / "run", first, "\n".join(r.getMessage() for r in records)


@pytest.mark.extended  # the default run trains on 2 devices of one process (trained_workdir).
def test_two_processes_train_like_the_command_line(tmp_path):
  """jax.distributed (launch/local.py): self-play split over the 2-process mesh, evaluation on each
  process's copy of the parameters, GNU Go games in process 0."""
  args = cli_command("go7_alphazero.py:tiny", tmp_path / "run", TRAINED_OVERRIDES, data_dir=None)[3:]
  two = check_ok(subprocess.run([sys.executable, "launch/local.py", "--processes=2", "--", *args], env=cli_env(),
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=900))
  assert "2 devices, 2 processes" in two.stderr
  assert checkpoint_steps(tmp_path / "run") == [2, 4]
  train = [r for r in metrics_lines(tmp_path / "run") if "train/policy_loss" in r]
  assert any(r["train/learning"] > 0 and r["train/policy_loss"] > 0 for r in train if r["step"] <= 4)


@contextlib.contextmanager
def caplog_at_info():
  """The log records of the block (absl logs through the `absl` logger), at INFO and above."""
  records, logger = [], logging.getLogger("absl")
  handler = logging.Handler(logging.INFO)
  handler.emit = records.append
  old_level = logger.level
  logger.addHandler(handler)
  logger.setLevel(logging.INFO)
  try:
    yield records
  finally:
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_cli_trains_evaluates_checkpoints_and_resumes(trained_workdir):
  workdir, first, resumed_log = trained_workdir
  assert first == [2, 4]
  assert "Resumed from step 4" in resumed_log
  assert checkpoint_steps(workdir)[-1] == 6
  records = metrics_lines(workdir)
  train = [r for r in records if "train/policy_loss" in r]
  assert {"selfplay/games", "train/value_loss", "selfplay_moves"} <= set().union(*train)
  assert any(r["train/learning"] == 1.0 and r["train/policy_loss"] > 0 for r in train)
  # Learning started in the command line's run already (at step 3 of steps 3-4: `learning` 0.5 at step 4).
  assert any(r["train/learning"] > 0 and r["train/policy_loss"] > 0 for r in train if r["step"] <= 4)
  evals = [r for r in records if "eval/win_rate_vs_random" in r]
  assert [r["step"] for r in evals] == [2, 4, 6]
  for r in evals:
    assert 0 <= r["eval/win_rate_vs_random"] <= 1 and 0 <= r["eval/win_rate_vs_previous"] <= 1
    assert ("eval/win_rate_vs_gnugo" in r) == gnugo.available()
  assert json.loads((workdir / "config.json").read_text())["task"] == "alphazero"


def test_loaded_agent_plays_only_legal_moves(trained_workdir):
  workdir, _, _ = trained_workdir
  agent = alphazero.load_agent(str(workdir), num_simulations=2)
  go = agent.go
  assert go.size == 5
  assert go.max_moves == 2 * 5 * 5  # the rules' full length for play, not the run's short self-play cap.
  state = go.init()
  rules = gtp.compiled(go)  # the jitted rules the GTP engine below uses too.
  moves = 0
  while not bool(state.terminated):
    action = agent.select_action(state)
    assert isinstance(action, int) and bool(rules.legal(state)[action])
    state = rules.step(state, action)
    moves += 1
  assert moves == go.max_moves or int(state.passes) == 2
  engine = gtp.Engine(gtp.fixed_player(agent), go.size, go.komi)  # as the GTP front end uses it.
  assert engine.handle("genmove b").startswith("= ")


def test_muzero_search_picks_legal_moves(tiny_task):
  """The PUCT option (Gumbel, the default, runs in every other test), with and without noise."""
  config = tiny_config(**{"search.policy": "muzero"})
  go = alphazero.task.make_game(config)
  model = alphazero.task.make_model(config, go)
  searcher = alphazero.task.Searcher(go, model, config.search)
  params = tiny_task[2].params  # init_params(model, go, key(0)), already computed.
  # Two positions: the empty board, and one where only a few points are legal.
  crowded = go.from_board(np.array([[1, 1, 1, 1, 0], [1, -1, -1, 1, 1], [1, -1, 0, -1, 1],
                                    [1, 1, -1, -1, 1], [0, 1, 1, 1, 1]]), to_play=-1)
  states = jax.tree.map(lambda a, b: jnp.stack([jnp.asarray(a), jnp.asarray(b)]), go.init(), crowded)

  @jax.jit
  def run(rng, explore):  # explore traced: one compilation for both.
    out = searcher(params, rng, states, 4, explore=explore)
    return out.action, out.action_weights, jax.vmap(go.legal_actions)(states)

  explored, weights, legal = jax.device_get(run(jax.random.key(1), True))
  played, _, _ = jax.device_get(run(jax.random.key(1), False))
  rows = np.arange(2)
  assert legal[rows, explored].all() and legal[rows, played].all()
  np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
  assert (weights[~legal] == 0).all()


@pytest.mark.parametrize("name", ["go7_alphazero", "go9_alphazero"])
def test_configs_build_their_tasks(name):
  """Full and tiny variants build (shapes only; go7:tiny trains end to end above)."""
  sizes = {}
  for variant in ("", "tiny"):
    config = load_config(name, variant=variant, set_data_dir=False)
    task = alphazero.make_task(config)
    state = jax.eval_shape(task.init, jax.random.key(0))
    sizes[variant] = sum(x.size for x in jax.tree.leaves(state.params))
    assert state.extra["replay"].rows["planes"].shape[0] == config.replay_size
  assert sizes[""] > 10 * sizes["tiny"]
