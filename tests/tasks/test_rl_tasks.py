"""PPO and DQN tasks in-process: cheap to build, time-major rows, the contract's fields."""
import jax
import pytest

pytest.importorskip("envpool")

from jaxai.core import sharding
from jaxai.core.evaluators import Evaluator
from jaxai.core.sources import CollectionSource
from jaxai.envs import envpool
from jaxai.errors import UserError
from jaxai.tasks.rl import dqn, ppo
from tests.helpers import load_config


def test_tasks_build_without_stepping_envs(monkeypatch):
  """Building a task (as tools do, to restore a run) only creates environments; RL has no data facts."""
  for name in ("step", "reset"):
    monkeypatch.setattr(envpool.Env, name, lambda *a, **k: pytest.fail("an env was stepped or reset"))
  for module, name in ((ppo, "cartpole_ppo"), (dqn, "cartpole_dqn")):
    task = module.make_task(load_config(name, set_data_dir=False), facts={})
    assert task.facts == {} and isinstance(task.source, CollectionSource) and not task.source.on_mesh
    (evaluator,) = task.evaluators
    assert isinstance(evaluator, Evaluator) and evaluator.placement == "local"
    assert evaluator.seed == 1  # config.seed + 1: the evaluation rng is fold_in(key(seed + 1), step).


@pytest.mark.parametrize("name", ["cartpole_ppo", "cartpole_dqn"])
def test_rollout_rows_are_time_major(name):
  """Rows (T, N, ...), split across devices on the env axis N; PPO's bootstrap_value (N,) on axis 0."""
  config = load_config(name, set_data_dir=False)
  module = ppo if config.task == "ppo" else dqn
  task = module.make_task(config)
  source = task.source
  abstract = jax.eval_shape(task.init, jax.random.key(0))
  _, rows, _ = jax.eval_shape(source.collect, source.policy_of(abstract), source.init_carry(),
                              jax.random.key(1))
  steps = config.num_steps if config.task == "ppo" else config.train_frequency
  extra = ("bootstrap_value",) if config.task == "ppo" else ()
  assert sorted(rows) == sorted(module.ROW_KEYS + extra)
  axes = sharding.axes_tree(source.batch_axes, rows)
  for key, row in rows.items():
    if key == "bootstrap_value":
      assert row.shape == (config.num_envs,) and axes[key] == 0
    else:
      assert row.shape[:2] == (steps, config.num_envs) and axes[key] == 1, (key, row.shape)


def test_bad_dqn_settings_are_user_errors():
  for key, value in (("td_loss", "l1"), ("replay_batch_size", 0), ("n_step", 0)):
    with pytest.raises(UserError, match=key):
      dqn.make_task(load_config("cartpole_dqn", {key: value}, set_data_dir=False))


def test_nature_cnn_as_matmuls_equals_nn_conv_with_the_same_parameters():
  """models.rl.MatmulConv (PPO's `conv_as_matmul` update) computes nn.Conv's function: same parameter
  tree, outputs and gradients equal to float rounding."""
  import jax.numpy as jnp
  import numpy as np
  from jaxai.models import rl as rl_models
  obs = jax.random.randint(jax.random.key(1), (3, 4, 84, 84), 0, 256).astype(jnp.uint8)
  conv, matmul = rl_models.NatureCNN(False), rl_models.NatureCNN(True)
  params = jax.jit(conv.init)(jax.random.key(0), obs)
  assert jax.tree.structure(jax.eval_shape(matmul.init, jax.random.key(0), obs)) == jax.tree.structure(params)

  def output_and_grads(model):  # one compile per model.
    loss = lambda p: (lambda y: (jnp.sum(y ** 2), y))(model.apply(p, obs))
    (_, out), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    return out, grads

  (out, grads), (out_matmul, grads_matmul) = output_and_grads(conv), output_and_grads(matmul)
  np.testing.assert_allclose(out_matmul, out, atol=2e-5)
  for reference, got in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_matmul)):
    np.testing.assert_allclose(got, reference, rtol=1e-4, atol=1e-5 * float(jnp.abs(reference).max()))
