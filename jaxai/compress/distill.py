"""Knowledge distillation (Hinton, Vinyals and Dean 2015, "Distilling the Knowledge in a Neural Network").

A student learns from a frozen teacher's temperature-softened class probabilities as well as from
the labels. This module is the loss and its config; the domain puts the teacher in its state and
calls `distillation_loss` in its train step.
"""
import jax
import jax.numpy as jnp
import ml_collections

from jaxai.errors import UserError
from jaxai.ops import losses


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      alpha=0.0,            # weight of the soft (teacher) term in [0, 1]; 0 = no distillation.
      temperature=4.0,      # T > 0 softening both teacher and student logits in the soft term.
      # The teacher's module, as config.model: {'name': ..., constructor keywords}. Its weights come
      # from the teacher run's checkpoint through config.init_from.
      teacher_model=ml_collections.ConfigDict(dict(name="mlp")),
  ))


def check(cfg: ml_collections.ConfigDict) -> None:
  if not 0.0 <= cfg.alpha <= 1.0:
    raise UserError(f"config.distill.alpha={cfg.alpha} must be in [0, 1] (0 = no distillation, 1 = "
                    "teacher targets only).")
  if not cfg.temperature > 0:
    raise UserError(f"config.distill.temperature={cfg.temperature} must be > 0 (Hinton et al. used 20 "
                    "on MNIST).")


def distillation_loss(student_logits, teacher_logits, labels, temperature: float, alpha: float,
                      label_smoothing: float = 0.0):
  """Per-example loss (B,) and its parts {'distill_kl': (B,), 'label_loss': (B,)}.

    loss = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, labels)

  student_logits, teacher_logits: (B, K); labels: (B,) int. The soft term is multiplied by T^2
  (Hinton et al. section 2): its gradient with respect to the student's logits scales as 1 / T^2,
  so the factor keeps the balance between the two terms roughly independent of T. 'distill_kl' is
  the KL at temperature T without that factor (nats); 'label_loss' the cross-entropy at T = 1 with
  `label_smoothing`. No gradient flows into the teacher's logits.
  """
  teacher_logits = jax.lax.stop_gradient(teacher_logits)
  log_p_teacher = jax.nn.log_softmax(teacher_logits / temperature)   # (B, K)
  log_p_student = jax.nn.log_softmax(student_logits / temperature)   # (B, K)
  kl = jnp.sum(jnp.exp(log_p_teacher) * (log_p_teacher - log_p_student), -1)  # (B,)
  label_loss = losses.cross_entropy(student_logits, labels, label_smoothing)  # (B,)
  loss = alpha * temperature ** 2 * kl + (1.0 - alpha) * label_loss
  return loss, {"distill_kl": kl, "label_loss": label_loss}
