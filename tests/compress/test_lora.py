"""LoRA through qwix: an adapted model at initialization is its base model bitwise (GPT, decoding
included, and CNN); merged adapters compute what the adapters do; fine-tuning from a pretrained run
with optimizer.trainable moves only the adapters; the speaker filter of the LM texts; bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai import compress_table, tasks
from jaxai.compress import lora
from jaxai.core import trainer
from jaxai.data import text
from jaxai.errors import UserError
from jaxai.lm import generate
from jaxai.models import cnn, gpt
from jaxai.tasks import lm
from tests.helpers import leaves_with_paths, load_config, metrics_lines, restore_state


def lora_cfg(**overrides):
  cfg = lora.default_config()
  cfg.update(dict(rank=4, alpha=8.0) | overrides)
  return cfg


def small_gpt():
  return gpt.GPT(vocab_size=20, block_size=8, num_layers=1, num_heads=2, embed_dim=16)


def small_cnn():  # one conv block: XLA:CPU compiles the CNN's truncated-normal init slowly.
  return cnn.CNN(features=(4,), convs_per_block=1, dense=16, num_classes=3)


def randomize_adapters(params, seed=7):
  """Every adapter's b (zero at init) drawn from N(0, 0.2^2), so the adapters change the output."""
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map_with_path(
      lambda path, v: (0.2 * rng.standard_normal(v.shape)).astype(v.dtype)
      if jax.tree_util.keystr(path).endswith(lora.SUFFIX_B + "']") else v, params)


def drop_adapters(params):
  """The adapted model's params without the adapter leaves: a base model's params."""
  return {name: drop_adapters(value) if isinstance(value, dict) else value
          for name, value in params.items() if "_lora_" not in name}


MODELS = {  # name: (model, input, LoRA settings)
    "gpt": (small_gpt, lambda: jax.random.randint(jax.random.key(1), (3, 8), 0, 20), dict(dropout=0.5)),
    "cnn": (small_cnn, lambda: jax.random.normal(jax.random.key(1), (3, 12, 12, 1)), {}),
}


@pytest.mark.parametrize("name", MODELS)
def test_adapted_model_at_init_is_the_base_model_and_merging_keeps_its_outputs(name):
  make, inputs, settings = MODELS[name]
  base, x, cfg = make(), inputs(), lora_cfg(**settings)
  adapted = lora.wrap(base, cfg)
  assert isinstance(adapted, type(base)) and type(lora.base_model(adapted)) is type(base)
  variables = jax.jit(adapted.init)(jax.random.key(0), x)
  params = variables["params"]
  base_vars = {**variables, "params": drop_adapters(params)}
  kernels = [k for k in leaves_with_paths(base_vars["params"]) if k.endswith("['kernel']")]
  assert len(lora.adapter_paths(params)) == 2 * len(kernels)  # an (a, b) pair per Dense / Conv kernel.
  assert lora.adapter_count(params) == sum(v.size for k, v in leaves_with_paths(params).items() if "_lora_" in k)

  apply_base, apply_adapted = jax.jit(lora.base_model(adapted).apply), jax.jit(adapted.apply)
  y_base = apply_base(base_vars, x)
  np.testing.assert_array_equal(apply_adapted(variables, x), y_base)  # b = 0: bitwise the base model.

  tuned = randomize_adapters(params)
  y_tuned = apply_adapted({**variables, "params": tuned}, x)
  assert np.abs(y_tuned - y_base).max() > 1e-2  # the adapters now matter...
  merged = lora.merge(tuned, cfg)
  assert jax.tree.structure(merged) == jax.tree.structure(base_vars["params"])
  y_merged = apply_base({**base_vars, "params": merged}, x)
  np.testing.assert_allclose(y_merged, y_tuned, rtol=1e-5, atol=1e-5)  # ...and merging keeps them.

  if name == "gpt":
    # Decoding with the KV cache: at init the adapted GPT writes exactly the base GPT's text.
    prompt = x[:1, :3]
    sample = lambda model, p: jax.jit(lambda p: generate.generate(model, p, prompt, jax.random.key(3), 1.0,
                                                                  num_chars=12))(p)
    np.testing.assert_array_equal(sample(adapted, params), sample(base, base_vars["params"]))
    # Adapter dropout (0.5) acts in training only: above, without a dropout rng, the merged
    # weights matched; with one (as in a train step) the adapters' inputs are dropped.
    train = jax.jit(lambda p: adapted.apply({"params": p}, x, train=True, rngs={"dropout": jax.random.key(4)}))
    assert np.abs(train(tuned) - y_merged).max() > 1e-2  # the base GPT has no dropout of its own.


def test_bad_lora_settings_are_user_errors():
  x = jnp.zeros((1, 8), jnp.int32)
  init = lambda model: jax.eval_shape(model.init, jax.random.key(0), x)["params"]
  for overrides, message in (({"rank": -1}, "rank=-1"), ({"alpha": 0.0}, "alpha=0.0"),
                             ({"module_path": "("}, "not a regular expression"),
                             ({"dropout": 1.0}, "dropout=1.0")):
    with pytest.raises(UserError, match=message):
      lora.wrap(small_gpt(), lora_cfg(**overrides))
  with pytest.raises(UserError, match=r"matches no Dense or Conv layer of GPT.*block_0/attn/qkv"):
    init(lora.wrap(small_gpt(), lora_cfg(module_path="encoder/.*")))
  with pytest.raises(UserError, match="config.lora.rank=-2"):  # the domain checks before any data.
    lm.make_task(load_config("shakespeare_gpt_lora", {"lora.rank": -2}, variant="lora_tiny"))
  params = init(lora.wrap(small_gpt(), lora_cfg()))
  with pytest.raises(UserError, match="rank 4, but config.lora.rank=2"):
    lora.merge(params, lora_cfg(rank=2))


def test_speaker_turns_are_kept_and_dropped_whole():
  whole = "ng of a turn.\n\nROMEO:\nBut soft!\nWhat light?\n\nJULIET:\nAy me!\n\nROMEO:\nShe speaks.\n\nNurse:\n"
  assert "\n\n".join(chunk for _, chunk in text.turns(whole)) == whole
  assert [s for s, _ in text.turns(whole)] == [None, "ROMEO", "JULIET", "ROMEO", "Nurse"]
  assert text.select_speakers(whole) == whole
  assert text.select_speakers(whole, ["ROMEO"]) == "ROMEO:\nBut soft!\nWhat light?\n\nROMEO:\nShe speaks."
  assert text.select_speakers(whole, exclude=["ROMEO", "Nurse"]) == "ng of a turn.\n\nJULIET:\nAy me!"
  assert text.select_speakers(whole, ["ROMEO", "JULIET"], ["ROMEO"]) == "JULIET:\nAy me!"
  assert list(text.speaker_chars(whole)) == ["ROMEO", "JULIET", "Nurse"]
  assert text.parse_speakers(" ROMEO, DUKE VINCENTIO ,") == ("ROMEO", "DUKE VINCENTIO")
  with pytest.raises(UserError, match=r"\['TYBALT'\], who have no turns in the play.*ROMEO \(46\), JULIET \(14\)"):
    text.check_speakers(whole, ["JULIET", "TYBALT"], "the play", "config.speakers")
  text.check_speakers(whole, ["JULIET", "TYBALT"], "the play", "config.speakers", require_all=False)


def test_speakers_of_tiny_shakespeare_and_unknown_names():
  config = load_config("shakespeare_gpt_lora", variant="lora_tiny")
  whole = text.load_text(config.dataset, "train", config.data_dir, False)
  held = lm.speaker_texts(config, whole, text.load_text(config.dataset, "validation", config.data_dir, False))
  config.update(speakers="", exclude_speakers="PETRUCHIO")
  rest = lm.speaker_texts(config, whole, held[1])
  assert {s for s, _ in text.turns(held[0])} == {s for s, _ in text.turns(held[1])} == {"PETRUCHIO"}
  assert "PETRUCHIO" not in {s for s, _ in text.turns(rest[0])}
  assert len(rest[0]) + len(held[0]) + len("\n\n") == len(whole)  # every turn on exactly one side.
  assert rest[1] == "" and 3000 < len(held[0]) < 4000  # his turns of 'validation', then none left.
  with pytest.raises(UserError, match=r"config.speakers / config.exclude_speakers names \['ROMEOO'\].*"
                                      r"GLOUCESTER \(\d+,\d+\), DUKE VINCENTIO"):
    lm.make_task(load_config("shakespeare_gpt_lora", {"speakers": "ROMEOO"}, variant="lora_tiny"))
  with pytest.raises(UserError, match=r"no turns in the eval split 'validation'.*PETRUCHIO"):
    lm.make_task(load_config("shakespeare_gpt_lora", {"speakers": "GLOUCESTER"}, variant="lora_tiny"))


def test_lora_fine_tuning_from_a_pretrained_run_trains_only_the_adapters(tmp_path):
  pre_dir, tune_dir = tmp_path / "pretrain", tmp_path / "lora"
  pre_config = load_config("shakespeare_gpt_lora", {"sample.num_chars": 0}, variant="pretrain_tiny")
  pre_task = tasks.make_task(pre_config)
  trainer.train_and_evaluate(pre_config, str(pre_dir), pre_task)
  config = load_config("shakespeare_gpt_lora", {"init_from.path": str(pre_dir)}, variant="lora_tiny")
  task = tasks.make_task(config)
  assert task.facts == pre_task.facts  # one vocabulary: built from the whole training split.
  assert "speakers PETRUCHIO" in task.summary and "exclude_speakers PETRUCHIO" in pre_task.summary
  trainer.train_and_evaluate(config, str(tune_dir), task)

  pretrained = restore_state(pre_dir, pre_task).params
  tuned = restore_state(tune_dir, task).params
  for path, value in leaves_with_paths(pretrained).items():  # every pretrained weight bitwise unchanged...
    np.testing.assert_array_equal(leaves_with_paths(tuned)[path], value, err_msg=path)
  adapters_b = [v for k, v in leaves_with_paths(tuned).items() if k.endswith("_lora_b']")]
  assert adapters_b and all(np.abs(b).max() > 0 for b in adapters_b)  # ...the adapters trained (b from 0).
  assert [r["step"] for r in metrics_lines(tune_dir) if "eval/loss" in r] == [config.num_train_steps]
  sample = tune_dir / "samples" / f"step_{config.num_train_steps}.txt"  # decoded by the adapted GPT.
  assert sample.read_text().startswith("PETRUCHIO:\n") and len(sample.read_text()) > len("PETRUCHIO:\n")
  # Merged, the fine-tuned params have the layout of the pretrained (plain GPT) ones: exportable.
  merged = lora.merge(tuned, config.lora)
  assert jax.tree.structure(merged) == jax.tree.structure(pretrained)
  assert not np.array_equal(merged["block_0"]["fc"]["kernel"], pretrained["block_0"]["fc"]["kernel"])
  # The export writes them as a plain GPT run that the LM task restores.
  exported = compress_table.export_lora_run(str(tune_dir), str(tmp_path / "merged"))
  plain = tasks.make_task(load_config("shakespeare_gpt_lora", {"lora.rank": 0, "optimizer.trainable": "",
                                                              "init_from.path": "", "init_from.fresh": ""},
                                      variant="lora_tiny"), task.facts)
  restored = restore_state(exported, plain)
  assert int(restored.step) == config.num_train_steps
  jax.tree.map(np.testing.assert_array_equal, restored.params, merged)
