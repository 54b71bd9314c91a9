"""Sequence models behind one registry; add one with a file and ``@register``.

>>> import models, tasks
>>> model = models.create("lstm", tasks.create("adding", length=50).signature, units=32)
"""

from models.registry import ModelError, create, entry, forward_flops, list_models, register, state_size
from models import bilstm, gru, lru, lstm, lstm_variants, mamba, minrnn, rnn, s4d, tcn, transformer, xlstm  # noqa: F401,E501  (registers the built-in models)

__all__ = ["ModelError", "create", "entry", "forward_flops", "list_models", "register", "state_size"]
