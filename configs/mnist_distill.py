"""Distillation on MNIST after Hinton, Vinyals and Dean (2015): a 2x800 MLP student learns from a
2x1200 MLP teacher's soft targets at temperature 20 (their figures: student alone 146 test errors,
distilled 74, teacher 67).

'teacher' is the paper's: an MLP (2x1200 ReLU, dropout 0.5) on inputs jittered by up to 2 pixels;
it trains ~20x faster than a CNN on a CPU, but in 6,000 steps it reached only 122 test errors, barely
better than the student alone (126), and distilling from it did not help (130). 'cnn_teacher', the
small CNN of configs/mnist_transfer.py, reached 68 errors in 2,000 steps and its distilled student
94 (benchmarks/compress_distill.py). Neither teacher has BatchNorm, so a teacher's state is its
weights alone. The student has no
regularization (no dropout, no jitter), alone or distilled; the distilled student's only extra
signal is the teacher.

Variants:
  'teacher'  the 2x1200 teacher          'student'  the 2x800 student from scratch (labels only)
  'cnn_teacher', 'cnn'  the same with a small CNN teacher (16-32 channels, no BatchNorm): a stronger
             teacher for short CPU budgets.
  ''         the 2x800 student distilled from a teacher run (needs --config.init_from.path)
  'fashion_teacher', 'fashion_student', 'fashion': the same on Fashion-MNIST.
  'tiny' (a tiny teacher), 'tiny_student', 'tiny_distill' (needs the tiny teacher's workdir): tests.

  python -m jaxai.main --config=configs/mnist_distill.py:teacher --workdir=/tmp/distill/teacher
  python -m jaxai.main --config=configs/mnist_distill.py:student --workdir=/tmp/distill/student
  python -m jaxai.main --config=configs/mnist_distill.py --workdir=/tmp/distill/distilled \
      --config.init_from.path=/tmp/distill/teacher
  python -m jaxai.main --config=configs/mnist_distill.py:cnn_teacher --workdir=/tmp/distill/cnn_teacher \
      --config.num_train_steps=2000
  python -m jaxai.main --config=configs/mnist_distill.py:cnn --workdir=/tmp/distill/cnn_distilled \
      --config.init_from.path=/tmp/distill/cnn_teacher --config.num_train_steps=6000

The teacher rides in the student's state (state.extra['teacher']), frozen; config.init_from loads it
from the teacher run's latest checkpoint (the map below), and the student's own weights start fresh.
"""
import ml_collections

from jaxai.tasks import classification

VARIANTS = ("", "teacher", "student", "cnn", "cnn_teacher", "fashion", "fashion_teacher",
            "fashion_student", "tiny", "tiny_student", "tiny_distill")
TEACHER = ml_collections.ConfigDict(dict(name="mlp", hidden=(1200, 1200), dropout_rate=0.5))
CNN_TEACHER = ml_collections.ConfigDict(dict(  # the small CNN of configs/mnist_transfer.py.
    name="cnn", features=(16, 32), convs_per_block=1, dense=128, dropout_rate=0.3, batch_norm=False))
STUDENT = ml_collections.ConfigDict(dict(name="mlp", hidden=(800, 800), dropout_rate=0.0))
TEACHER_MAP = "params=extra/teacher/params,model_state=extra/teacher/model_state"


def get_config(variant: str = ""):
  if variant not in VARIANTS:
    raise ValueError(f"Unknown variant {variant!r} of mnist_distill; use one of {VARIANTS}.")
  config = classification.default_config()
  config.dataset = "fashion_mnist:3.0.1" if variant.startswith("fashion") else "mnist:3.0.1"
  # 'teacher', 'student' or 'distill'; the tiny tests' standalone variant 'tiny' is the teacher.
  role = "teacher" if variant == "tiny" else variant.split("_")[-1] if "_" in variant else variant
  role = {"": "distill", "fashion": "distill", "cnn": "distill"}.get(role, role)
  teacher = CNN_TEACHER if variant.startswith("cnn") else TEACHER
  config.batch_size = 128
  config.num_epochs = 20.0
  config.optimizer.name = "adamw"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.warmup_steps = 200
  config.optimizer.weight_decay = 0.0
  config.eval_every_steps = 2000
  config.checkpoint_every_steps = 2000
  if role == "teacher":
    config.model = ml_collections.ConfigDict(teacher.to_dict())
    config.augment.crop_padding = 2  # jitter by up to 2 pixels, as Hinton et al.'s teacher.
    if teacher is CNN_TEACHER:
      config.optimizer.learning_rate = 3e-3
  else:
    config.model = ml_collections.ConfigDict(STUDENT.to_dict())
  if role == "distill":
    config.distill.alpha = 0.9           # weight of the soft term (the labels get 0.1).
    config.distill.temperature = 20.0    # Hinton et al.'s temperature for the 2x800 student.
    config.distill.teacher_model = ml_collections.ConfigDict(teacher.to_dict())
    config.init_from.map = TEACHER_MAP   # the teacher run's weights into the state; the student starts fresh.
  if variant.startswith("tiny"):
    config.max_train_examples = 512
    config.max_eval_examples = 300
    config.batch_size = 32
    config.eval_batch_size = 100
    config.num_train_steps = 12
    config.optimizer.warmup_steps = 2
    config.model.hidden = (64,) if role == "teacher" else (32,)
    if role == "distill":
      config.distill.teacher_model.hidden = (64,)
    config.log_every_steps = 4
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 4
  return config
