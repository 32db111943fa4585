"""The image classifiers by config name: the classification domain trains them, other domains
(sample quality features, attacks) rebuild a trained one from its run's config."""
import ml_collections

from jaxai.errors import UserError
from jaxai.models.cnn import CNN
from jaxai.models.mlp import MLP
from jaxai.models.resnet import ResNet
from jaxai.models.small_cnns import DPConvNet, FedAvgCNN

MODELS = {"mlp": MLP, "cnn": CNN, "resnet": ResNet, "fedavg_cnn": FedAvgCNN, "dp_cnn": DPConvNet}


def make_classifier(model_config: ml_collections.ConfigDict, num_classes: int):
  """The module of `config.model` ({'name': ..., constructor keywords})."""
  kwargs = dict(model_config)
  name = kwargs.pop("name")
  if name not in MODELS:
    raise UserError(f"config.model.name={name!r} is unknown; available models: {sorted(MODELS)}.")
  try:
    return MODELS[name](num_classes=num_classes, **kwargs)
  except TypeError as e:
    raise UserError(f"config.model for {name!r}: {e}.") from None
