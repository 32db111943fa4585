"""Shared training infrastructure. The only package that knows about devices and files.

Domains plug in through `jaxai.core.task.Task`; nothing here imports a domain.
"""
