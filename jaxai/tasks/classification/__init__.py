"""Image classification, natural, adversarial, distilled or differentially private training, with
robust accuracy and saliency maps.

  task.py       config -> data (jaxai.data.labelled) -> model -> train step (natural, Madry PGD,
                TRADES, distillation or DP-SGD) -> evaluators.
  robust.py     the robust-accuracy evaluator (FGSM, PGD, APGD-CE from jaxai.attacks).
  saliency.py   the saliency evaluator (jaxai.interpret: overlays, randomization check, deletion curve).
"""
from jaxai.tasks.classification.task import data_facts, default_config, make_task

__all__ = ["data_facts", "default_config", "make_task"]
