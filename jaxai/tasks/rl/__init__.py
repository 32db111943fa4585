"""Reinforcement learning on EnvPool environments: PPO (`ppo.py`) and the DQN family (`dqn.py`)."""
