"""Federated learning (FedAvg, FedProx, FedAvgM, DP-FedAvg): see jaxai.tasks.federated.task."""
from jaxai.tasks.federated.task import default_config, make_task

__all__ = ["default_config", "make_task"]
