"""Generate text from a trained character model, one character per jitted step.

  python -m jaxai.lm.sample --workdir=<run> --prompt="ROMEO:" --num_chars=500 \
      --temperature=0.8 --top_k=40 --seed=0

The CLI rebuilds the config and model from `<workdir>/config.json`, the vocabulary from the
training text that config names, and restores the latest checkpoint.

Library: `Sampler(model, top_k).generate(params, prompt_ids, num_chars, temperature, seed)`. A step
feeds one character and draws the next: the GPT reads and extends its KV cache, the LSTM carries
its state, so each new character costs one step of one compiled function. The GPT's cache holds
`block_size` positions (its learned positions end there): when it is full, the cache is rebuilt from
the last `block_size // 2` characters and generation goes on. Character n is drawn with the key
fold_in(key(seed), n), so a seed fixes the text.
"""
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app

from jaxai.core.errors import UserError
from jaxai.models import char_rnn, gpt


def encode_prompt(vocab, prompt: str, what: str = "--prompt") -> np.ndarray:
  """(len,) ids of a non-empty prompt whose characters are all in `vocab`; else a UserError."""
  if not prompt:
    raise UserError(f"{what} is empty: give at least one character to start from, e.g. {what}='ROMEO:' "
                    "(a newline works too).")
  missing = vocab.unknown(prompt)
  if missing:
    raise UserError(f"{what}={prompt!r} has characters outside the model's vocabulary: "
                    f"{', '.join(map(repr, missing))}. The vocabulary is {vocab.chars!r}.")
  return vocab.encode(prompt)


def pick(logits, rng, temperature, top_k: int):
  """(B, V) logits -> (B,) ids: the argmax when temperature == 0, else a draw from softmax(logits / T)
  restricted to the `top_k` most likely characters (all when 0)."""
  if top_k and top_k < logits.shape[-1]:
    kth = jax.lax.top_k(logits, top_k)[0][:, -1:]  # (B, 1) the k-th largest logit.
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  drawn = jax.random.categorical(rng, logits / jnp.maximum(temperature, 1e-6), axis=-1)
  return jnp.where(temperature > 0, drawn, jnp.argmax(logits, -1)).astype(jnp.int32)


class Sampler:
  """Generation for a `GPT` (KV cache) or `CharRNN` (carried LSTM state), compiled once per instance."""

  def __init__(self, model, top_k: int = 0):
    if not isinstance(model, (gpt.GPT, char_rnn.CharRNN)):
      raise TypeError(f"Cannot sample from {type(model).__name__}.")
    self.model, self.top_k = model, top_k
    self.context = model.block_size if isinstance(model, gpt.GPT) else None  # None: unbounded.
    self.step = jax.jit(self._step)
    self.num_traces = 0  # times `step` was traced (compiled); stays 1 over any number of generations.

  def init_carry(self, batch_size: int):
    if self.context is None:
      return self.model.zero_carry(batch_size)
    return self.model.init_cache(batch_size)

  def _step(self, params, carry, tokens, position, rng, temperature):
    """Feeds (B,) tokens at `position`; returns the new carry, (B, V) logits and the next (B,) tokens."""
    self.num_traces += 1
    if self.context is None:
      logits, carry = self.model.apply({"params": params}, tokens[:, None], carry)
    else:
      logits, updated = self.model.apply({"params": params, "cache": carry}, tokens[:, None],
                                         decode_position=position, mutable=["cache"])
      carry = updated["cache"]
    logits = logits[:, 0]
    return carry, logits, pick(logits, rng, temperature, self.top_k)

  def generate(self, params, prompt_ids, num_chars: int, temperature: float = 1.0, seed: int = 0,
               num_samples: int = 1) -> np.ndarray:
    """(num_samples, num_chars) int32 ids continuing the (P,) prompt, P >= 1."""
    prompt = np.broadcast_to(np.asarray(prompt_ids, np.int32), (num_samples, len(prompt_ids)))
    key, temperature = jax.random.key(seed), jnp.float32(temperature)
    # Every input where the parameters are (e.g. replicated over the training mesh), so that the
    # step's outputs, fed back in, have the same types as its first inputs: one trace.
    leaf = jax.tree.leaves(params)[0]
    put = (lambda x: jax.device_put(x, leaf.sharding)) if isinstance(leaf, jax.Array) else (lambda x: x)

    def feed(tokens, n):  # a fresh carry through (B, K) tokens; the key of character n draws the next.
      carry, rng = put(self.init_carry(num_samples)), jax.random.fold_in(key, n)
      for i in range(tokens.shape[1]):
        carry, _, nxt = self.step(params, carry, put(tokens[:, i]), jnp.int32(i), rng, temperature)
      return carry, nxt, tokens.shape[1]

    context = prompt if self.context is None else prompt[:, -self.context:]
    carry, nxt, position = feed(context, 0)
    out = []
    for n in range(num_chars):
      out.append(nxt)
      if n + 1 == num_chars:
        break
      if position == self.context:  # cache full: rebuild it from the most recent characters.
        recent = np.concatenate([prompt, np.stack(jax.device_get(out), 1)], 1)[:, -(self.context // 2):]
        carry, nxt, position = feed(recent, n + 1)
      else:
        carry, _, nxt = self.step(params, carry, nxt, jnp.int32(position), jax.random.fold_in(key, n + 1),
                                  temperature)
        position += 1
    if not out:
      return np.zeros((num_samples, 0), np.int32)
    return np.stack(jax.device_get(out), 1).astype(np.int32)


def load_run_config(workdir: str):
  """The config a language-model run in `workdir` was trained with (its config.json)."""
  from jaxai.core import runs

  config = runs.load_config(workdir, "lm")
  config.sample.num_chars = 0  # the task's own eval-time sampling is not needed when restoring.
  return config


def restore_params(workdir: str, config):
  """(params, step) of the latest checkpoint of a language-model run, replicated over the local mesh."""
  from jaxai.core import runs
  from jaxai.tasks import lm

  state, step = runs.restore_latest_state(workdir, lm.make_task(config))
  return state.params, step


def main(argv):
  from absl import flags, logging
  from jaxai.core import logs
  from jaxai.tasks import lm
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
  logs.quiet_libraries()
  FLAGS = flags.FLAGS
  try:  # every check before the checkpoint is read and the step compiled.
    if FLAGS.num_chars < 0 or FLAGS.temperature < 0 or FLAGS.top_k < 0 or FLAGS.num_samples < 1:
      raise UserError("--num_chars, --temperature and --top_k must be >= 0 and --num_samples >= 1.")
    if not FLAGS.prompt:
      raise UserError("--prompt is empty: give at least one character to start from, e.g. --prompt='ROMEO:' "
                      "(a newline works too).")
    config = load_run_config(FLAGS.workdir)
    vocab, _ = lm.load_vocab(config)
    prompt_ids = encode_prompt(vocab, FLAGS.prompt)
    params, step = restore_params(FLAGS.workdir, config)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  logging.info("Sampling from step %d of %s (%s, vocabulary %d)", step, FLAGS.workdir, config.model.name, vocab.size)
  model = lm.make_model(config, vocab.size)
  ids = Sampler(model, FLAGS.top_k).generate(params, prompt_ids, FLAGS.num_chars, FLAGS.temperature,
                                             FLAGS.seed, FLAGS.num_samples)
  print("\n----------\n".join(FLAGS.prompt + vocab.decode(row) for row in ids))


def _define_flags():
  from absl import flags
  flags.DEFINE_string("workdir", None, "Directory of a language-model training run.")
  flags.DEFINE_string("prompt", "\n", "Text to continue; every character must be in the vocabulary.")
  flags.DEFINE_integer("num_chars", 500, "Characters to generate after the prompt.")
  flags.DEFINE_float("temperature", 0.8, "Softmax temperature; 0 = always the most likely character.")
  flags.DEFINE_integer("top_k", 40, "Sample among the k most likely characters; 0 = all.")
  flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same text.")
  flags.DEFINE_integer("num_samples", 1, "Independent samples, generated as one batch.")
  flags.mark_flag_as_required("workdir")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
