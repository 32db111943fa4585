"""Text to image at small scale: a VQ-VAE tokenizer turns each 28x28 image into 7x7 = 49 codes, and the
project's GPT (jaxai.models.gpt) models [BOS, caption words, PAD..., image codes] so that a typed prompt
('a handwritten seven') is continued with the codes of an image, which the tokenizer's decoder draws.

One train step updates both models, each with its own optimizer (config.tokenizer.optimizer,
config.prior.optimizer):
  tokenizer  Bernoulli reconstruction loss + commitment_cost * |z_e - sg(z_q)|^2, gradients straight
             through the quantization; the codebook is an EMA of the encoder outputs assigned to each
             code (no codebook loss term), and codes used by fewer than config.tokenizer.dead_code_threshold
             vectors per batch (EMA) restart from a random encoder output of the batch.
  prior      next-token cross-entropy of the 49 image codes (of the current tokenizer, stop_gradient)
             given the caption, over the codebook's ids only. The caption of each example is drawn per
             step (from the step's rng) among its dataset's templates (captions.TEMPLATES).
For the first `config.prior_start_step` train steps the prior is not updated (learning rate zero,
implemented by masking: its parameters and optimizer state are left unchanged, so Adam's statistics and
its schedule start when it does, on settled codes); its schedule spans the remaining steps.

State: TrainState(params={'tokenizer', 'prior'}, opt_state={'tokenizer', 'prior'},
model_state={'codebook': {'embedding', 'cluster_size', 'embed_sum'}}, step). The vocabulary is saved in
the run's facts, so `python -m jaxai.generate --workdir=RUN --prompt="a handwritten seven"` needs only
the run. Sampling draws the 49 codes with config.sampling.temperature and top_k through
jaxai.lm.generate (KV cache), restricted to the codebook's ids.
"""
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai.core import optim
from jaxai.core.evaluators import DatasetEvaluator, Evaluator
from jaxai.core.sources import DatasetSource
from jaxai.core.state import TrainState
from jaxai.core.summaries import Image
from jaxai.core.task import Task
from jaxai.data import pipeline
from jaxai.errors import UserError
from jaxai.lm import generate
from jaxai.models import gpt, vqvae
from jaxai.tasks.generative import captions, common, quality

NUM_RECONSTRUCTIONS = 16  # test images shown beside their reconstructions.


def default_config() -> ml_collections.ConfigDict:
  config = common.default_config()
  config.task = "text2image"
  del config.optimizer  # each model has its own: config.tokenizer.optimizer, config.prior.optimizer.
  tokenizer_opt = optim.default_config()
  tokenizer_opt.update(dict(name="adam", learning_rate=1e-3, warmup_steps=100, end_learning_rate_factor=0.1))
  config.tokenizer = ml_collections.ConfigDict(dict(
      num_codes=128,                # codebook size K.
      code_dim=32,                  # D of each code vector.
      features=(32, 64),            # channels after the first and second stride-2 convolution.
      num_res_blocks=1,
      commitment_cost=0.25,         # beta of |z_e - sg(z_q)|^2.
      ema_decay=0.99,               # of the codebook's moving averages.
      dead_code_threshold=0.05,     # restart codes assigned fewer vectors per batch (EMA); 0 = never; < 1.
      optimizer=tokenizer_opt,
  ))
  prior_opt = optim.default_config()
  prior_opt.update(dict(name="adamw", learning_rate=1e-3, b2=0.99, warmup_steps=100, weight_decay=0.1,
                        grad_clip_norm=1.0, end_learning_rate_factor=0.1))
  config.prior = ml_collections.ConfigDict(dict(
      num_layers=4, num_heads=4, embed_dim=128, dropout_rate=0.1, use_bias=False,
      dtype="auto",                 # compute dtype: 'auto' = bfloat16 on accelerators, float32 on CPU.
      optimizer=prior_opt,
  ))
  config.prior_start_step = 0       # train steps before the prior starts learning (on settled codes).
  config.sampling = ml_collections.ConfigDict(dict(
      temperature=1.0,              # of the image codes' distribution; 0 = always the most likely code.
      top_k=0,                      # draw among the k most likely codes; 0 = all.
  ))
  return config


def check_config(config) -> None:
  """Settings refused before any data is read."""
  tok, prior = config.tokenizer, config.prior
  if tok.num_codes < 2 or tok.code_dim < 1:
    raise UserError(f"config.tokenizer.num_codes={tok.num_codes} must be >= 2 and code_dim >= 1.")
  if len(tok.features) != 2:
    raise UserError(f"config.tokenizer.features={tuple(tok.features)} must give 2 channel counts, one per "
                    "downsampling (e.g. (32, 64)).")
  if not 0.0 < tok.ema_decay < 1.0:
    raise UserError(f"config.tokenizer.ema_decay={tok.ema_decay} must be in (0, 1), e.g. 0.99.")
  if not 0.0 <= tok.dead_code_threshold < 1.0:
    raise UserError(f"config.tokenizer.dead_code_threshold={tok.dead_code_threshold} must be in [0, 1) "
                    "(vectors per batch; 0 disables restarts).")
  if prior.embed_dim % prior.num_heads:
    raise UserError(f"config.prior.embed_dim={prior.embed_dim} must be a multiple of "
                    f"num_heads={prior.num_heads}.")
  gpt.compute_dtype(prior.dtype, "config.prior.dtype")
  if config.sampling.temperature < 0 or config.sampling.top_k < 0:
    raise UserError(f"config.sampling.temperature={config.sampling.temperature} and top_k="
                    f"{config.sampling.top_k} must be >= 0.")
  captions.Captions(config.dataset)  # the dataset has captions.


class Models:
  """The two modules and the token layout of a run: [BOS, words, PAD...] (L) then h * w image codes."""

  def __init__(self, config, facts: dict):
    self.image_shape = tuple(facts["image_shape"])
    h, w, c = self.image_shape
    if h % 4 or w % 4:
      raise UserError(f"Images of {h}x{w} do not halve twice into a code grid; text2image needs H and W "
                      "divisible by 4 (28x28 -> 7x7 codes).")
    self.grid = (h // 4, w // 4)
    self.num_image_tokens = self.grid[0] * self.grid[1]
    self.captions = captions.Captions(config.dataset, facts["vocabulary"], facts["caption_length"])
    self.text_vocab = len(self.captions.vocabulary)
    tok = config.tokenizer
    self.num_codes = tok.num_codes
    self.tokenizer = vqvae.VQVAE(num_codes=tok.num_codes, code_dim=tok.code_dim, features=tuple(tok.features),
                                 num_res_blocks=tok.num_res_blocks, out_channels=c)
    self.prompt_length = self.captions.length
    p = config.prior
    # block_size: the last code is drawn but never fed.
    self.prior = gpt.GPT(vocab_size=self.text_vocab + tok.num_codes,
                         block_size=self.prompt_length + self.num_image_tokens - 1,
                         num_layers=p.num_layers, num_heads=p.num_heads, embed_dim=p.embed_dim,
                         dropout_rate=p.dropout_rate, use_bias=p.use_bias,
                         dtype=gpt.compute_dtype(p.dtype, "config.prior.dtype"))

  def tokenizer_vars(self, state) -> dict:
    return {"params": state.params["tokenizer"], "codebook": state.model_state["codebook"]}

  def sequence(self, prompts, codes):
    """(B, L) caption rows, (B, h, w) codes -> (B, L + h * w) prior tokens (codes offset past the words)."""
    return jnp.concatenate([prompts, codes.reshape(codes.shape[0], -1) + self.text_vocab], axis=1)

  def image_logits(self, params, tokens, train=False, rng=None):
    """(B, L + h * w) tokens -> (B, h * w, K) logits of each image code given everything before it."""
    rngs = {"dropout": rng} if train else {}
    logits = self.prior.apply({"params": params}, tokens[:, :-1], train=train, rngs=rngs)
    return logits[:, self.prompt_length - 1:, self.text_vocab:]

  def prior_loss(self, params, prompts, codes, train=False, rng=None):
    """(B,) mean cross-entropy (nats) per image code."""
    logits = self.image_logits(params, self.sequence(prompts, codes), train, rng)
    targets = codes.reshape(codes.shape[0], -1)
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean(-1)


def tokenizer_losses(out, x):
  """(B,) reconstruction loss (Bernoulli, nats per pixel), (B,) commitment |z_e - sg(z_q)|^2 per element."""
  recon = optax.sigmoid_binary_cross_entropy(out["logits"], x).mean((1, 2, 3))
  commit = jnp.mean((out["z_e"] - jax.lax.stop_gradient(out["z_q"])) ** 2, axis=(1, 2, 3))
  return recon, commit


def make_facts(config, train, test) -> dict:
  return common.data_facts(config, train, test) | {
      "vocabulary": list(captions.VOCABULARY), "caption_length": captions.CAPTION_LENGTH}


def make_generator(config, facts: dict) -> common.Generator:
  """Prompt rows (N, L) -> (N, H, W, C) images in [0, 1]."""
  m = Models(config, facts)
  table = m.captions.table()  # (classes, templates, L)
  temperature, top_k = float(config.sampling.temperature), int(config.sampling.top_k)

  def sample(state, rng, condition):
    ids = generate.generate(m.prior, state.params["prior"], condition, rng, temperature,
                            num_chars=m.num_image_tokens, top_k=top_k,
                            id_range=(m.text_vocab, m.text_vocab + m.num_codes))
    codes = (ids - m.text_vocab).reshape((-1,) + m.grid)
    logits = m.tokenizer.apply(m.tokenizer_vars(state), codes, method="decode")
    return jax.nn.sigmoid(logits)

  return common.Generator(sample=sample, conditioning="prompt", class_names=m.captions.class_names,
                          of_classes=lambda labels: table[np.asarray(labels), 0],
                          parse=m.captions.encode_prompt)


def reconstructions(m: Models, images) -> Evaluator:
  """Test images (top row) above their reconstructions through the codes (bottom row)."""
  def fn(state, rng):
    x = common.to_unit(jnp.asarray(images()))
    codes = m.tokenizer.apply(m.tokenizer_vars(state), x, method="codes")
    return x, jax.nn.sigmoid(m.tokenizer.apply(m.tokenizer_vars(state), codes, method="decode"))

  def finish(outputs, step):
    x, y = outputs
    return {"reconstructions": Image(np.concatenate([x, y]), columns=len(x))}
  return Evaluator(fn, finish=finish)


def make_task(config: ml_collections.ConfigDict, facts: dict | None = None) -> Task:
  """The text-to-image task; with `facts` (a saved run's) no data is read until training starts."""
  check_config(config)
  load = common.split_loader(config)
  if facts is None:
    facts = make_facts(config, load("train"), load("test"))
  m = Models(config, facts)
  source = DatasetSource(lambda: load("train"), config.batch_size, config.seed,
                         sampling="shuffle", num_examples=facts["num_train_examples"])
  source.check()
  num_steps = config.num_train_steps or math.ceil(config.num_epochs * source.steps_per_epoch)
  start = config.prior_start_step
  if not 0 <= start < num_steps:
    raise UserError(f"config.prior_start_step={start} must be in [0, {num_steps}), the run's train steps.")
  tok_cfg, prior_cfg = config.tokenizer, config.prior
  tok_tx = optim.make_optimizer(tok_cfg.optimizer, num_steps)
  tok_lr = optim.make_schedule(tok_cfg.optimizer, num_steps)
  prior_tx = optim.make_optimizer(prior_cfg.optimizer, num_steps - start)  # updates start at `start`.
  prior_lr = optim.make_schedule(prior_cfg.optimizer, num_steps - start)
  table = jnp.asarray(m.captions.table())  # (classes, templates, L)
  num_templates = table.shape[1]

  def init(rng) -> TrainState:
    tok_rng, prior_rng = jax.random.split(rng)
    variables = m.tokenizer.init({"params": tok_rng}, jnp.zeros((1,) + m.image_shape, jnp.float32))
    tokens = jnp.zeros((1, m.prompt_length + m.num_image_tokens - 1), jnp.int32)
    params = {"tokenizer": variables["params"], "prior": m.prior.init(prior_rng, tokens)["params"]}
    opt_state = {"tokenizer": tok_tx.init(params["tokenizer"]), "prior": prior_tx.init(params["prior"])}
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state,
                      model_state={"codebook": variables["codebook"]})

  def train_step(state: TrainState, batch, rng):
    template_rng, dropout_rng, restart_rng = jax.random.split(rng, 3)
    x = common.to_unit(batch["image"])
    codebook = state.model_state["codebook"]

    def tokenizer_loss(params):
      out = m.tokenizer.apply({"params": params, "codebook": codebook}, x)
      recon, commit = tokenizer_losses(out, x)
      return recon.mean() + tok_cfg.commitment_cost * commit.mean(), (out, recon.mean(), commit.mean())

    (tok_loss, (out, recon, commit)), tok_grads = jax.value_and_grad(tokenizer_loss, has_aux=True)(
        state.params["tokenizer"])
    z_e, codes = jax.lax.stop_gradient(out["z_e"]), jax.lax.stop_gradient(out["codes"])
    updates, tok_opt = tok_tx.update(tok_grads, state.opt_state["tokenizer"], state.params["tokenizer"])
    tok_params = optax.apply_updates(state.params["tokenizer"], updates)
    new_codebook = vqvae.ema_update(codebook, z_e, codes, tok_cfg.ema_decay)
    dead = jnp.zeros(())
    if tok_cfg.dead_code_threshold > 0:
      dead = jnp.sum(new_codebook["cluster_size"] < tok_cfg.dead_code_threshold)
      new_codebook = vqvae.restart_dead_codes(new_codebook, z_e, restart_rng, tok_cfg.dead_code_threshold)

    templates = jax.random.randint(template_rng, (x.shape[0],), 0, num_templates)
    prompts = table[batch["label"], templates]  # (B, L)
    prior_loss_fn = lambda p: m.prior_loss(p, prompts, codes, train=True, rng=dropout_rng).mean()
    prior_loss, prior_grads = jax.value_and_grad(prior_loss_fn)(state.params["prior"])
    updates, prior_opt = prior_tx.update(prior_grads, state.opt_state["prior"], state.params["prior"])
    prior_params = optax.apply_updates(state.params["prior"], updates)
    active = state.step >= start  # before: no update at all (the prior's learning rate is zero).
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(active, a, b), new, old)
    prior_params = keep(prior_params, state.params["prior"])
    prior_opt = keep(prior_opt, state.opt_state["prior"])

    metrics = {"loss": tok_loss + prior_loss, "tokenizer/loss": tok_loss, "tokenizer/recon_loss": recon,
               "tokenizer/commitment": commit, "tokenizer/restarted_codes": dead,
               "tokenizer/perplexity": vqvae.perplexity(codes, m.num_codes),
               "tokenizer/grad_norm": optax.global_norm(tok_grads),
               "tokenizer/learning_rate": tok_lr(state.step),
               "prior/loss": prior_loss, "prior/grad_norm": optax.global_norm(prior_grads),
               "prior/learning_rate": jnp.where(active, prior_lr(jnp.maximum(state.step - start, 0)), 0.0)}
    new_state = state.replace(step=state.step + 1, params={"tokenizer": tok_params, "prior": prior_params},
                              opt_state={"tokenizer": tok_opt, "prior": prior_opt},
                              model_state={"codebook": new_codebook})
    return new_state, metrics

  def eval_step(state: TrainState, batch):
    mask = batch["mask"].astype(jnp.float32)
    x = common.to_unit(batch["image"])
    out = m.tokenizer.apply(m.tokenizer_vars(state), x)
    recon, commit = tokenizer_losses(out, x)
    mse = jnp.mean((jax.nn.sigmoid(out["logits"]) - x) ** 2, axis=(1, 2, 3))
    prior_loss = m.prior_loss(state.params["prior"], table[batch["label"], 0], out["codes"])
    count = jnp.sum(mask)
    used = jnp.sum(jnp.any(jax.nn.one_hot(out["codes"].reshape(-1), m.num_codes) *
                           jnp.repeat(mask, m.num_image_tokens)[:, None] > 0, axis=0))
    # Batch-level figures (perplexity, codes used) are weighted by the batch's rows: their mean over batches.
    return {"tokenizer/recon_loss": jnp.sum(recon * mask), "tokenizer/commitment": jnp.sum(commit * mask),
            "tokenizer/mse": jnp.sum(mse * mask), "prior/loss": jnp.sum(prior_loss * mask),
            "tokenizer/perplexity": vqvae.perplexity(out["codes"], m.num_codes, mask) * count,
            "tokenizer/codes_used": used.astype(jnp.float32) * count, "count": count}

  generator = make_generator(config, facts)
  fixed = lambda: load("test")["image"][:NUM_RECONSTRUCTIONS]
  evaluators = [
      common.sample_grid(generator, config),
      reconstructions(m, fixed),
      DatasetEvaluator(eval_step, lambda: pipeline.padded_batches(load("test"), config.eval_batch_size)),
      *quality.evaluators(generator, config, facts, lambda: load("train"), lambda: load("test")),
  ]
  summary = (f"{config.dataset}: {facts['num_train_examples']} train / {facts['num_eval_examples']} eval "
             f"images "
             f"{m.image_shape} -> {m.grid[0]}x{m.grid[1]} codes of {m.num_codes}; prior GPT "
             f"{prior_cfg.num_layers}x{prior_cfg.embed_dim} over {m.prompt_length} caption + "
             f"{m.num_image_tokens} image tokens")
  return Task(name="text2image", init=init, train_step=train_step, source=source, num_train_steps=num_steps,
              evaluators=evaluators, units_per_step={"examples": config.batch_size}, facts=facts,
              summary=summary)
