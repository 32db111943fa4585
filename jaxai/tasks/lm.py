"""Character-level language models (GPT, char-rnn LSTM): config -> text -> model -> pure train/eval steps.

The whole domain logic is here; the shared trainer runs it. Training windows are drawn with
replacement by the core's DatasetSource (the batch of a step depends only on (seed, step)). One train
step is one optimizer update: with `grad_accum_steps` > 1 the global batch is split into microbatches
inside the step (`lax.scan`), gradients are averaged, then applied once. Parameters that
`config.optimizer.frozen` / `trainable` freeze (all but the adapters, for LoRA) get zero gradients,
so XLA never computes them and train/grad_norm is over the trained ones. Losses are in nats per
character. At evaluation time the task also generates `config.sample.num_chars` characters from
`config.sample.prompt` (jaxai.lm.generate; written to <workdir>/samples/step_<N>.txt and TensorBoard).

With `config.speakers` / `config.exclude_speakers` the training and eval texts keep only (or lose)
those speakers' turns (jaxai.data.text.select_speakers). The vocabulary is always built from the
whole (unfiltered) training split, so a run pretrained without a speaker and one fine-tuned on that
speaker alone share it; a run started from another (config.init_from) must have that run's (checked).

Facts: {'vocab': the sorted characters of the (unfiltered) training text}. `make_task(config, facts)`
builds the model from them and reads the text only when training or evaluation first needs it, so a
tool (python -m jaxai.sample) restores a run without its data.
"""
import functools

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxai.compress import lora, sparsity, transforms
from jaxai.core import init_from, optim, runs
from jaxai.core.config import trainer_config
from jaxai.core.evaluators import DatasetEvaluator, Evaluator
from jaxai.core.sources import DatasetSource
from jaxai.core.state import TrainState
from jaxai.core.summaries import Text
from jaxai.core.task import Task
from jaxai.data import pipeline, text
from jaxai.errors import UserError
from jaxai.lm import generate
from jaxai.models import char_rnn, gpt

MODELS = ("gpt", "lstm")


def default_config() -> ml_collections.ConfigDict:
  """Every key a language-model experiment may set; experiment configs override some."""
  config = trainer_config()
  config.task = "lm"
  config.dataset = "tiny_shakespeare"  # a TFDS dataset whose records hold a `text` feature.
  config.data_dir = ""                 # TFDS data_dir; '' = $TFDS_DATA_DIR or ~/tensorflow_datasets.
  config.download = True               # download and prepare a missing dataset (needs network).
  config.train_split = "train"         # the vocabulary is built from this text.
  config.eval_split = "validation"     # TFDS's 5%; 'validation+test' is nanoGPT's last 10%.
  config.speakers = ""                 # 'ROMEO,JULIET': train and evaluate on these speakers' turns only
                                       # (a turn starts with the header line 'NAME:'); '' = every turn.
  config.exclude_speakers = ""         # 'PETRUCHIO': drop these speakers' turns from both texts.
                                       # The vocabulary stays the whole training text's either way.
  config.block_size = 256              # characters per training window (the model's context).
  config.batch_size = 64               # windows per optimizer step, over all devices and processes.
  config.grad_accum_steps = 1          # microbatches per step; batch_size must split evenly.
  config.eval_windows = 0              # fixed eval windows, evenly spaced; 0 = every non-overlapping window.
  config.eval_batch_size = 64          # windows per eval batch (global); the last batch is padded.
  config.model = ml_collections.ConfigDict(dict(
      name="gpt",                      # one of MODELS; other keys go to the module's constructor.
      dtype="auto",                    # compute dtype: 'auto' = bfloat16 on accelerators, float32 on CPU.
      num_layers=6, num_heads=6, embed_dim=384, dropout_rate=0.2, use_bias=False,
  ))
  config.sample = ml_collections.ConfigDict(dict(  # generated at every evaluation.
      num_chars=200,                   # 0 disables.
      prompt="\n",                     # context to continue; every character must be in the vocabulary.
      temperature=0.8,                 # < 1 sharpens the distribution; 0 = always the most likely character.
      top_k=40,                        # sample among the k most likely characters; 0 = all.
      seed=0,
  ))
  config.optimizer.name = "adamw"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.b2 = 0.99
  config.optimizer.warmup_steps = 100
  config.optimizer.end_learning_rate_factor = 0.1
  config.optimizer.weight_decay = 0.1
  config.optimizer.grad_clip_norm = 1.0
  config.num_train_steps = 5000
  return transforms.add_defaults(config)  # config.lora, config.quantization


def make_model(config: ml_collections.ConfigDict, vocab_size: int):
  """The Flax module of `config.model` for a vocabulary of `vocab_size` characters."""
  kwargs = dict(config.model)
  name, dtype = kwargs.pop("name"), gpt.compute_dtype(kwargs.pop("dtype"))
  if name not in MODELS:
    raise UserError(f"config.model.name={name!r} is unknown; available models: {MODELS}.")
  try:
    if name == "gpt":
      if kwargs["embed_dim"] % kwargs["num_heads"]:
        raise UserError(f"config.model.embed_dim={kwargs['embed_dim']} must be a multiple of "
                        f"num_heads={kwargs['num_heads']}.")
      model = gpt.GPT(vocab_size=vocab_size, block_size=config.block_size, dtype=dtype, **kwargs)
    else:
      model = char_rnn.CharRNN(vocab_size=vocab_size, dtype=dtype, **kwargs)
  except TypeError as e:
    raise UserError(f"config.model for {name!r}: {e}.") from None
  return transforms.wrap_model(model, config)


def logits_of(model, params, tokens, train: bool = False, rng=None):
  """(B, T) -> (B, T, V) float32 logits for either model (the LSTM starts from a zero state)."""
  rngs = {"dropout": rng} if train else {}
  out = model.apply({"params": params}, tokens, train=train, rngs=rngs)
  return out[0] if isinstance(model, char_rnn.CharRNN) else out


def flops_per_token(model, params) -> float:
  if isinstance(model, gpt.GPT):
    return gpt.flops_per_token(params, model.num_layers, model.block_size, model.embed_dim)
  return char_rnn.flops_per_token(params)


def check_config(config: ml_collections.ConfigDict) -> None:
  """Checks that need no data; raise before loading anything."""
  if config.model.name not in MODELS:
    raise UserError(f"config.model.name={config.model.name!r} is unknown; available models: {MODELS}.")
  gpt.compute_dtype(config.model.dtype)
  if config.block_size < 1:
    raise UserError(f"config.block_size={config.block_size} must be >= 1.")
  accum = config.grad_accum_steps
  devices = jax.device_count()
  if accum < 1 or config.batch_size % (accum * devices):
    raise UserError(f"config.batch_size={config.batch_size} must split into grad_accum_steps={accum} "
                    f"microbatches of a multiple of the {devices} device(s); use a batch_size that is a "
                    f"multiple of {max(accum, 1) * devices}.")
  if config.get("lora"):
    lora.check_config(config.lora)
  s = config.sample
  if s.num_chars < 0 or s.temperature < 0 or s.top_k < 0:
    raise UserError(f"config.sample: num_chars={s.num_chars}, temperature={s.temperature} and "
                    f"top_k={s.top_k} must all be >= 0.")


def vocab_of(facts: dict) -> text.CharVocab:
  """The vocabulary of a run's facts."""
  if not isinstance(facts, dict) or not facts.get("vocab"):
    raise UserError(f"The run's facts {facts!r} have no 'vocab' (the training text's characters); "
                    "the run's facts.json is damaged or not a language-model run's.")
  return text.CharVocab(facts["vocab"])


def window_source(arrays, block_size: int, batch_size: int, seed: int, **process) -> DatasetSource:
  """Training windows over arrays['tokens'] ((N,) int32; `arrays` may be a function returning them),
  drawn with replacement: the windows of step s start at
  default_rng([seed, s]).integers(0, N - block_size, batch_size), as nanoGPT draws them.
  `process`: process_index / process_count (default: this process's)."""
  return DatasetSource(
      arrays, batch_size, seed, sampling="replacement",
      num_examples=lambda arrays: text.num_train_windows(len(arrays["tokens"]), block_size),
      gather=lambda arrays, starts: text.windows(arrays["tokens"], starts, block_size), **process)


def sample_evaluator(config: ml_collections.ConfigDict, model, vocab: text.CharVocab, prompt_ids) -> Evaluator:
  """`config.sample.num_chars` characters continuing the (P,) `prompt_ids`, as Text under 'samples'.

  Every evaluation samples with the same key(config.sample.seed), so samples of successive
  evaluations differ only by the parameters (the evaluation's own rng is not used).
  """
  s = config.sample
  prompt = prompt_ids[None]  # (1, P)

  def sample(params, rng):  # -> (1, num_chars) ids
    del rng
    return generate.generate(model, params, prompt, jax.random.key(s.seed), s.temperature,
                             num_chars=s.num_chars, top_k=s.top_k)

  def finish(ids, step):
    return {"samples": Text(s.prompt + vocab.decode(ids[0]))}

  return Evaluator(sample, finish, view=lambda state: state.params)


def speaker_texts(config: ml_collections.ConfigDict, train_text: str, eval_text: str) -> tuple[str, str]:
  """(train, eval) texts of the turns `config.speakers` / `config.exclude_speakers` select; UserErrors
  for a speaker with no turns in the training text, or, with `speakers`, none in the eval text."""
  keep = text.parse_speakers(config.get("speakers", ""))
  drop = text.parse_speakers(config.get("exclude_speakers", ""))
  if not keep and not drop:
    return train_text, eval_text
  text.check_speakers(train_text, keep + drop, f"the {config.train_split!r} split of {config.dataset}",
                      "config.speakers / config.exclude_speakers")
  if keep:
    text.check_speakers(eval_text, keep, f"the eval split {config.eval_split!r} of {config.dataset} "
                        "(no text to evaluate on; try --config.eval_split=validation+test)",
                        "config.speakers", require_all=False)
  return text.select_speakers(train_text, keep, drop), text.select_speakers(eval_text, keep, drop)


def check_init_from_vocab(config: ml_collections.ConfigDict, vocab: text.CharVocab) -> None:
  """A run started from another run's checkpoint must index characters as that run did."""
  if not (config.get("init_from") and config.init_from.path):
    return
  source = runs.load_facts(init_from.resolve(config.init_from.path)[0])
  if source and source.get("vocab") and source["vocab"] != vocab.chars:
    raise UserError(f"config.init_from.path={config.init_from.path!r} was trained with the vocabulary "
                    f"{source['vocab']!r}, this run's training text gives {vocab.chars!r}: start from a "
                    "run on the same dataset and train_split (speaker filters do not change it).")


def make_task(config: ml_collections.ConfigDict, facts: dict | None = None) -> Task:
  """The language-model task; with `facts` (a saved run's) no text is read until training starts."""
  check_config(config)
  load = lambda split: text.load_text(config.dataset, split, config.data_dir, config.download)
  block = config.block_size
  train_text = eval_text = None
  if facts is None:
    whole_train = load(config.train_split)
    facts = {"vocab": text.CharVocab.from_text(whole_train).chars}
    train_text, eval_text = speaker_texts(config, whole_train, load(config.eval_split))
    check_init_from_vocab(config, vocab_of(facts))
  vocab = vocab_of(facts)

  @functools.cache
  def texts() -> tuple[str, str]:  # (train, eval) when read only now (a run restored from its facts).
    return speaker_texts(config, load(config.train_split), load(config.eval_split))

  def train_arrays() -> dict:  # {'tokens': (N,) int32}, the whole (selected) training text.
    tokens = vocab.encode(train_text if train_text is not None else texts()[0])
    text.num_train_windows(len(tokens), block)
    return {"tokens": tokens}

  @functools.cache
  def eval_arrays() -> dict:  # {'inputs', 'targets'}: (windows, block_size) int32 each.
    held_out = eval_text if eval_text is not None else texts()[1]
    unknown = vocab.unknown(held_out)
    if unknown:
      raise UserError(f"The eval split {config.eval_split!r} has characters {unknown[:10]} that the "
                      f"training text does not; the model cannot score them.")
    return text.eval_windows(vocab.encode(held_out), block, config.eval_windows)

  if eval_text is not None:
    eval_arrays()  # With the data at hand, its errors come now, before anything is compiled.
  prompt_ids = None
  if config.sample.num_chars:
    prompt_ids = generate.encode_prompt(vocab, config.sample.prompt, "config.sample.prompt")
  source = window_source(train_arrays() if train_text is not None else train_arrays, block,
                         config.batch_size, config.seed)

  num_steps = config.num_train_steps
  tx = optim.make_optimizer(config.optimizer, num_steps)
  learning_rate = optim.make_schedule(config.optimizer, num_steps)
  model = make_model(config, vocab.size)
  accum = config.grad_accum_steps

  def init(rng) -> TrainState:
    params = model.init({"params": rng}, jnp.zeros((1, block), jnp.int32))["params"]
    return TrainState.create(params, tx)

  def loss_fn(params, batch, rng):
    logits = logits_of(model, params, batch["inputs"], train=True, rng=rng)  # (B, T, V)
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"]).mean()

  abstract_params = jax.eval_shape(init, jax.random.key(0)).params
  trains = optim.trained_leaves(config.optimizer, abstract_params)

  def grad_fn(params, batch, rng):
    loss, grads = jax.value_and_grad(loss_fn)(params, batch, rng)
    if trains is not None:  # zeros for frozen params: XLA then never computes their gradients.
      grads = jax.tree.map(lambda g, t: g if t else jnp.zeros_like(g), grads, trains)
    return loss, grads

  def train_step(state: TrainState, batch, rng):
    if accum == 1:
      loss, grads = grad_fn(state.params, batch, rng)
    else:
      # (B, T) -> (accum, B / accum, T), microbatch m = rows m, m + accum, ...: each device's
      # contiguous rows feed every microbatch, so splitting needs no communication.
      micro = jax.tree.map(lambda x: x.reshape((-1, accum) + x.shape[1:]).swapaxes(0, 1), batch)

      def one(carry, xs):
        m, mb = xs
        loss, grads = grad_fn(state.params, mb, jax.random.fold_in(rng, m))
        return jax.tree.map(jnp.add, carry, (loss, grads)), None

      zeros = (jnp.zeros(()), jax.tree.map(jnp.zeros_like, state.params))
      (loss, grads), _ = jax.lax.scan(one, zeros, (jnp.arange(accum), micro))
      loss, grads = jax.tree.map(lambda x: x / accum, (loss, grads))
    metrics = {"loss": loss, "grad_norm": optax.global_norm(grads), "learning_rate": learning_rate(state.step)}
    return state.apply_gradients(tx, grads), metrics

  def eval_step(state: TrainState, batch):
    logits = logits_of(model, state.params, batch["inputs"])
    per_window = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"]).mean(-1)  # (B,)
    mask = batch["mask"].astype(jnp.float32)
    return {"loss": jnp.sum(per_window * mask), "count": jnp.sum(mask)}

  evaluators = [DatasetEvaluator(eval_step, lambda: pipeline.padded_batches(eval_arrays(), config.eval_batch_size))]
  if config.sample.num_chars:
    evaluators.append(sample_evaluator(config, model, vocab, prompt_ids))
  if config.optimizer.pruning.method != "none":
    evaluators.append(sparsity.evaluator(config.optimizer.pruning.prunable))  # per-layer sparsity.

  tokens_per_step = config.batch_size * block
  if train_text is not None:
    data = (f"{len(train_text):,} train / {len(eval_text):,} eval ({config.eval_split}) characters, "
            f"vocabulary {vocab.size}; {len(eval_arrays()['inputs'])} eval windows of {block}")
  else:
    data = f"vocabulary {vocab.size} (the run's facts; the text is read when first needed)"
  turns = "".join(f"; {key} {config[key]}" for key in ("speakers", "exclude_speakers")
                  if config.get(key))
  adapters = (f" with LoRA rank {config.lora.rank} ({lora.adapter_count(abstract_params):,} adapter params)"
              if config.get("lora") and config.lora.rank else "")
  return Task(
      name="lm", init=init, train_step=train_step, source=source, num_train_steps=num_steps,
      evaluators=evaluators, facts=facts,
      summary=f"{config.dataset}{turns}: {data}; model {config.model.name}{adapters}",
      units_per_step={"tokens": tokens_per_step,
                      "model_flops": flops_per_token(model, abstract_params) * tokens_per_step})
