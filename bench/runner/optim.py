"""The optimizer every run trains with: Adam that logs the gradient norm before clipping."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lstm_bench")  # a saved model (--save-model) names it
class NormAdam(keras.optimizers.Adam):
    """Adam that records, inside the compiled step, the global gradient norm before clipping.

    Variables ``grad_norm`` (last step), ``grad_norm_max`` (largest since the last ``read_norms``)
    and ``clipped`` (steps at which clipping changed the gradient). Keras' ``clipnorm`` clips each
    tensor by its own norm, so a step counts as clipped when any tensor's norm exceeds it;
    ``global_clipnorm`` when the global norm does. ``value_clip`` clips every gradient element to
    ``[-value_clip, value_clip]`` first (Keras' own ``clipvalue`` cannot be combined with ``clipnorm``); a step
    then also counts as clipped when any element exceeds it.
    """

    def __init__(self, *args, value_clip: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.value_clip = value_clip

    def get_config(self):
        return {**super().get_config(), "value_clip": self.value_clip}

    def build(self, variables):
        super().build(variables)
        self.grad_norm = self.add_variable((), name="grad_norm")
        self.grad_norm_max = self.add_variable((), name="grad_norm_max")
        self.clipped = self.add_variable((), name="clipped")

    def _clip_gradients(self, grads):
        squares = [ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads if g is not None]
        norm = ops.sqrt(ops.sum(ops.stack(squares)))
        if self.clipnorm:
            fired = ops.max(ops.stack(squares)) > self.clipnorm**2
        elif self.global_clipnorm:
            fired = norm > self.global_clipnorm
        else:
            fired = ops.convert_to_tensor(False)
        if self.value_clip:
            largest = ops.max(ops.stack([ops.max(ops.abs(g)) for g in grads if g is not None]))
            fired = ops.logical_or(fired, largest > self.value_clip)
            grads = [None if g is None else ops.clip(g, -self.value_clip, self.value_clip) for g in grads]
        self.grad_norm.assign(norm)
        self.grad_norm_max.assign(ops.maximum(self.grad_norm_max, norm))
        self.clipped.assign_add(ops.cast(fired, "float32"))
        return super()._clip_gradients(grads)

    def read_norms(self) -> dict:
        """The norms since the last read, and the running clip count; resets the running maximum."""
        out = {"grad_norm": float(self.grad_norm), "grad_norm_max": float(self.grad_norm_max),
               "clipped_steps": int(float(self.clipped))}
        self.grad_norm_max.assign(0.0)
        return out
