"""The attacks of jaxai.attacks, checked the way the anchors check them: every output stays in the
eps-ball and the pixel range; on a trained model PGD with restarts is at least as strong as FGSM and as
single-start PGD, and APGD-CE at least as strong as PGD at equal budget; a flat loss moves nothing
beyond the random start; bad arguments fail before any compile."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai import attacks
from jaxai.attacks import balls
from jaxai.errors import UserError

N = 64
EPS = {"linf": 0.1, "l2": 1.5}


def batch(model, n=N):
  return jnp.asarray(model.images[:n]), jnp.asarray(model.labels[:n]), jax.random.split(jax.random.key(0), n)


def compiled(model, name, norm="linf", **kwargs):
  """(x, y, attack(eps) -> x_adv): eps is an argument, so one compilation serves every radius."""
  x, y, rngs = batch(model)
  fn = jax.jit(lambda v, x, y, r, eps: attacks.run(name, model.apply, v, x, y, r, eps=eps, norm=norm, **kwargs))
  return x, y, lambda eps: fn(model.variables, x, y, rngs, eps)


def attack(model, name, norm="linf", **kwargs):
  x, y, fn = compiled(model, name, norm, **kwargs)
  return x, y, fn(EPS[norm])


def correct(model, x, y):
  return np.asarray(jnp.argmax(model.apply(model.variables, x), -1) == y)


@pytest.mark.parametrize("name", attacks.ATTACKS)
@pytest.mark.parametrize("norm", attacks.NORMS)
def test_outputs_stay_in_the_ball_and_the_pixel_range(mnist_model, name, norm):
  x, y, fn = compiled(mnist_model, name, norm, steps=5)
  np.testing.assert_array_equal(fn(0.0), x)  # eps 0: nothing may move, random start included.
  x_adv = fn(EPS[norm])
  distance = np.asarray(balls.distance(x_adv, x, norm))
  assert distance.max() <= EPS[norm] * (1 + 1e-5), distance.max()
  assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
  assert distance.mean() > 0.3 * EPS[norm]  # it did move: the bound is not met by staying put.
  assert correct(mnist_model, x_adv, y).mean() < correct(mnist_model, x, y).mean()


def test_pgd_with_restarts_is_at_least_as_strong_as_fgsm_and_single_start_pgd(mnist_model):
  x, y, fgsm = attack(mnist_model, "fgsm")
  _, _, single = attack(mnist_model, "pgd", steps=10)
  _, _, restarted = attack(mnist_model, "pgd", steps=10, restarts=3)
  survives = {k: correct(mnist_model, v, y) for k, v in
              dict(clean=x, fgsm=fgsm, single=single, restarted=restarted).items()}
  # Restart 0 draws the single-start run's start and each example keeps its worst point, so every
  # example the single start fools stays fooled; FGSM is only weaker on average.
  assert not np.any(survives["restarted"] & ~survives["single"])
  assert survives["restarted"].mean() <= survives["fgsm"].mean() < survives["clean"].mean()


def test_apgd_is_at_least_as_strong_as_pgd_at_equal_budget(mnist_model):
  x, y, pgd = attack(mnist_model, "pgd", steps=20)
  _, _, apgd = attack(mnist_model, "apgd", steps=20)
  pgd_acc, apgd_acc = correct(mnist_model, pgd, y).mean(), correct(mnist_model, apgd, y).mean()
  assert apgd_acc <= pgd_acc < correct(mnist_model, x, y).mean(), (apgd_acc, pgd_acc)


@pytest.mark.parametrize("name", attacks.ATTACKS)
def test_a_flat_loss_moves_nothing_beyond_the_random_start(mnist_model, name):
  x, y, rngs = batch(mnist_model, 8)
  flat = lambda variables, x: jnp.broadcast_to(variables["b"], (x.shape[0], 10)) + 0.0 * x.sum((1, 2, 3))[:, None]
  x_adv = attacks.run(name, flat, {"b": jnp.arange(10.0)}, x, y, rngs, eps=0.2, steps=6, restarts=2)
  first_start = balls.random_start(jax.vmap(jax.random.fold_in, (0, None))(rngs, 0), x, 0.2, "linf", 0.0, 1.0)
  np.testing.assert_array_equal(x_adv, x if name == "fgsm" else first_start)
  assert name == "fgsm" or not np.array_equal(first_start, x)


def test_an_examples_attack_does_not_depend_on_its_batch(mnist_model):
  x, y, rngs = batch(mnist_model, 16)
  fn = lambda n: attacks.pgd(mnist_model.apply, mnist_model.variables, x[:n], y[:n], rngs[:n], eps=0.1, steps=4)
  np.testing.assert_allclose(fn(8), fn(16)[:8], atol=1e-6)


@pytest.mark.parametrize("args, message", [
    (dict(name="cw", eps=0.1), "unknown"),
    (dict(name="pgd", eps=-0.1), ">= 0"),
    (dict(name="pgd", eps=1.5), "above the pixel range"),
    (dict(name="pgd", eps=0.1, norm="l1"), "norm"),
    (dict(name="apgd", eps=0.1, steps=0), "steps"),
])
def test_bad_arguments_get_a_clear_error(args, message):
  with pytest.raises(UserError, match=message):
    attacks.check(**args, image_shape=(28, 28, 1))
