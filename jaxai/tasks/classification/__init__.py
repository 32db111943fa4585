"""Image classification, natural or adversarial training, with robust accuracy and saliency maps.

  task.py       config -> data -> model -> train step (natural, Madry PGD, TRADES or distillation)
                -> evaluators.
  data.py       a split's examples (only `config.classes`, relabelled) and the run's facts.
  robust.py     the robust-accuracy evaluator (FGSM, PGD, APGD-CE from jaxai.attacks).
  saliency.py   the saliency evaluator (jaxai.interpret: overlays, randomization check, deletion curve).
"""
from jaxai.tasks.classification.task import data_facts, default_config, make_task

__all__ = ["data_facts", "default_config", "make_task"]
