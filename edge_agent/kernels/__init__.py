"""Streaming step kernels (numba, ``steps``) and their plain Python/numpy twin (``reference``).

Use them through ``edge_agent.analysis`` (validation, contiguous arrays, Step records); the kernel
functions themselves are private and take raw parameter vectors.
"""
