"""Numeric precision of a run: strict fp32, TF32 matmuls, or bf16 mixed precision; set per backend, recorded.

``float32`` means IEEE fp32 everywhere: TF32 is switched off where a backend would use it by default (TensorFlow
and cuDNN on Ampere and later GPUs). ``tf32`` lets matmuls and cuDNN kernels use TensorFloat-32 (fp32 range, 10-bit
mantissa) on GPUs that have it; on the CPU it changes nothing. ``mixed_bfloat16`` computes in bf16 with fp32
variables (Keras' mixed-precision policy), matmuls in TF32 where bf16 is not used.

Importing this module imports no backend.
"""

from __future__ import annotations

from bench.core.choices import PRECISIONS

_current = {"name": "float32", "policy": "float32", "matmul": "highest"}


def apply(name: str) -> dict:
    """Set ``name`` for this process (the Keras dtype policy and the backend's fp32 matmul precision)."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    import keras

    policy = "mixed_bfloat16" if name == "mixed_bfloat16" else "float32"
    keras.config.set_dtype_policy(policy)
    tf32 = name != "float32"
    _allow_tf32(keras.backend.backend(), tf32)
    _current.update(name=name, policy=policy, matmul="tf32" if tf32 else "highest")
    return current()


def current() -> dict:
    """What this process runs at: the run's precision name, the Keras dtype policy, the fp32 matmul precision."""
    import keras

    return {**_current, "policy": keras.config.dtype_policy().name}


def _allow_tf32(backend: str, allow: bool) -> None:
    if backend == "torch":
        import torch
        torch.backends.cuda.matmul.allow_tf32 = allow
        torch.backends.cudnn.allow_tf32 = allow
    elif backend == "jax":
        import jax
        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if allow else "highest")
    elif backend == "tensorflow":
        import tensorflow as tf
        tf.config.experimental.enable_tensor_float_32_execution(allow)
