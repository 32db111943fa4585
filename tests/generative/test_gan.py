"""GAN task (jaxai.tasks.generative.gan): network shapes, that each update moves only its own
network, label conditioning, one tiny trainer run (sample grid, metrics, bitwise resume), bad configs."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.errors import UserError
from jaxai.tasks.generative import gan
from tests.helpers import assert_resume_is_bitwise, load_config, metrics_lines, restore_state

FACTS = {"image_shape": [28, 28, 1], "num_classes": 10, "class_names": [str(i) for i in range(10)],
         "num_train_examples": 64, "num_eval_examples": 64}


def _updates(conditional=True, **gan_overrides):
  config = load_config("mnist_cgan" if conditional else "mnist_dcgan")
  for k, v in gan_overrides.items():
    config.gan[k] = v
  updates = gan.Updates(config, FACTS)
  updates.set_steps(10)
  return updates, updates.init(jax.random.key(0))


def _same(a, b) -> bool:
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.mark.parametrize("conditional", [False, True])
def test_network_shapes(conditional):
  updates, state = _updates(conditional)
  labels = jnp.arange(5, dtype=jnp.int32)

  @jax.jit
  def run(state):
    fake = updates.generate(state.params["generator"], jax.random.key(1), labels)
    logits = updates.D.apply({"params": state.params["discriminator"]}, fake, labels if conditional else None)
    return fake, logits, updates.sample(state, jax.random.key(1), labels)
  fake, logits, images = run(state)
  assert fake.shape == (5, 28, 28, 1) and float(jnp.abs(fake).max()) <= 1.0
  assert logits.shape == (5,)
  assert images.shape == (5, 28, 28, 1) and 0.0 <= float(images.min()) and float(images.max()) <= 1.0


def test_each_update_moves_only_its_own_network():
  updates, state = _updates(True, ema_decay=0.5)
  real = jax.random.uniform(jax.random.key(2), (8, 28, 28, 1), minval=-1.0, maxval=1.0)
  labels = jnp.arange(8, dtype=jnp.int32) % 10
  after_d, d_metrics = jax.jit(updates.d_update)(state, real, labels, jax.random.key(3))
  assert not _same(after_d.params["discriminator"], state.params["discriminator"])
  assert _same(after_d.params["generator"], state.params["generator"])
  assert _same(after_d.opt_state["generator"], state.opt_state["generator"])
  assert _same(after_d.ema, state.ema)
  after_g, g_metrics = jax.jit(updates.g_update)(state, labels, jax.random.key(3))
  assert not _same(after_g.params["generator"], state.params["generator"])
  assert not _same(after_g.ema, state.ema)  # the EMA follows the generator
  assert _same(after_g.params["discriminator"], state.params["discriminator"])
  assert _same(after_g.opt_state["discriminator"], state.opt_state["discriminator"])
  for m in (d_metrics, g_metrics):
    assert all(np.isfinite(float(v)) for v in m.values())


def test_conditional_output_depends_on_label():
  updates, state = _updates(True)
  sample = jax.jit(lambda state, labels: updates.sample(state, jax.random.key(5), labels))
  threes = sample(state, jnp.full((4,), 3, jnp.int32))
  sevens = sample(state, jnp.full((4,), 7, jnp.int32))  # same noise, other label.
  assert float(jnp.abs(threes - sevens).max()) > 1e-4
  generator = gan.make_generator(updates.config, FACTS)
  assert generator.conditioning == "class" and int(generator.parse("7")) == 7


def test_tiny_cgan_trains_samples_and_resumes_bitwise(tmp_path, data_dir):
  config = load_config("mnist_cgan")
  config.gan.disc_steps = 2  # each train step: 2 D updates (on halves of the batch), then 1 G update.
  assert_resume_is_bitwise(config, gan.make_task, tmp_path)  # trains twice: once whole, once resumed.
  state = restore_state(tmp_path, gan.make_task(config))
  count = lambda opt: int(jax.tree.leaves(opt)[0])  # adam's update count is its first leaf.
  steps = config.num_train_steps
  assert (count(state.opt_state["discriminator"]), count(state.opt_state["generator"]), int(state.step)) == (
      2 * steps, steps, steps)
  grids = sorted((tmp_path / "samples").glob("*.png"))
  assert grids, "no sample grid written"
  records = metrics_lines(tmp_path)
  train = [r for r in records if any(k.endswith("d_loss") for k in r)]
  assert train, records
  assert all(any(k.endswith(m) for k in train[-1]) for m in ("g_loss", "d_real", "d_fake", "g_grad_norm"))
  for record in train:
    for key, value in record.items():
      if isinstance(value, float):
        assert np.isfinite(value), (key, record)
  facts = json.loads((tmp_path / "facts.json").read_text())
  assert facts["num_classes"] == 10 and facts["image_shape"] == [28, 28, 1]


@pytest.mark.parametrize("overrides,message", [
    ({"gan.disc_steps": 0}, "disc_steps"),
    ({"gan.disc_steps": 3}, "divisible"),
    ({"gan.ema_decay": 1.0}, "ema_decay"),
    ({"model.upsample": "bilinear"}, "upsample"),
])
def test_bad_config_is_a_user_error(overrides, message):
  with pytest.raises(UserError, match=message):
    gan.make_task(load_config("mnist_cgan", overrides), FACTS)


def test_unknown_class_and_unconditional_prompt_are_user_errors():
  cgan = gan.make_generator(load_config("mnist_cgan"), {**FACTS, "class_names": list("abcdefghij")})
  with pytest.raises(UserError, match="Unknown class"):
    cgan.parse("dragon")
  dcgan = gan.make_generator(load_config("mnist_dcgan"), FACTS)
  with pytest.raises(UserError, match="unconditional"):
    dcgan.parse("7")
