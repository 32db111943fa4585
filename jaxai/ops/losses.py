"""Classification losses and metrics, per example (callers reduce, so masks stay exact)."""
import jax.numpy as jnp
import optax


def cross_entropy(logits, labels, label_smoothing: float = 0.0):
  """(B, K) logits, (B,) int labels -> (B,) cross-entropy in nats."""
  num_classes = logits.shape[-1]
  targets = optax.smooth_labels(jnp.eye(num_classes)[labels], label_smoothing) if label_smoothing else \
      jnp.eye(num_classes)[labels]
  return optax.softmax_cross_entropy(logits, targets)


def correct(logits, labels):
  """(B,) float 1.0 where the arg-max class is the label."""
  return (jnp.argmax(logits, -1) == labels).astype(jnp.float32)


def masked_sums(logits, labels, mask) -> dict:
  """An evaluation batch's sums over its real rows: {'loss', 'accuracy', 'count'} (DatasetEvaluator)."""
  mask = mask.astype(jnp.float32)
  return {"loss": jnp.sum(cross_entropy(logits, labels) * mask),
          "accuracy": jnp.sum(correct(logits, labels) * mask), "count": jnp.sum(mask)}
