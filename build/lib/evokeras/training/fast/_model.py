"""The model's side of :func:`~evokeras.training.fast.fit_fast`, for both backends.

Its compiled loss, unreduced (:func:`_loss_object`, :func:`_per_sample_loss`), the
forward-pass losses, sparse categorical accuracy -- all in ``keras.ops``, so the same
code runs inside a JAX program and a ``tf.function`` -- and the per-model cache.

Keras is imported inside the functions (here and in the package's ``__init__``): importing
:mod:`evokeras.training.fast` must not import Keras, which fixes the backend.
"""

from __future__ import annotations

from typing import Any, NamedTuple

_ATTR = "_evokeras_fasttrain"  # per-model cache attribute (TensorFlow functions, keys)


def _model_cache(model: Any) -> dict[str, Any]:
    cache = model.__dict__.get(_ATTR)
    if cache is None:
        cache = {}
        object.__setattr__(model, _ATTR, cache)  # bypass Keras attribute tracking
    return cache


def _training_kwargs(model: Any, training: bool) -> dict[str, Any]:
    return {"training": training} if getattr(model, "_call_has_training_arg", True) else {}


# -- loss and accuracy (backend-neutral, keras.ops) -----------------------------------


class _PerSampleLoss(NamedTuple):
    """The model's compiled loss, unreduced: ``fn(y_true, y_pred)`` -> per-sample values."""

    fn: Any
    dtype: str
    config: Any  # for the cache key


def _loss_object(model: Any) -> _PerSampleLoss:
    """The model's compiled loss, resolved as ``model.compile`` resolves it."""
    import keras

    identifier = getattr(model, "loss", None)
    if identifier is None:
        raise ValueError("fit_fast: the model must be compiled with a loss")
    if isinstance(identifier, list | tuple | dict):
        raise ValueError("fit_fast: only a single loss is supported")
    loss = keras.losses.get(identifier)
    config = keras.saving.serialize_keras_object(loss)
    if isinstance(loss, keras.losses.Loss):  # its ``call`` is the unreduced loss
        return _PerSampleLoss(loss.call, loss.dtype, config)
    return _PerSampleLoss(loss, keras.config.floatx(), config)


def _per_sample_loss(loss_obj: _PerSampleLoss, y: Any, y_pred: Any) -> Any:
    """Unreduced loss, one value per sample (trailing axes averaged, as Keras reduces)."""
    from keras import ops

    y_pred = ops.convert_to_tensor(y_pred, dtype=loss_obj.dtype)
    y = ops.convert_to_tensor(y, dtype=loss_obj.dtype)
    values = loss_obj.fn(y, y_pred)
    if len(values.shape) > 1:
        values = ops.mean(ops.reshape(values, (values.shape[0], -1)), axis=1)
    return values


def _extra_loss(losses: Any) -> Any:
    """Sum of forward-pass / regularisation losses (0.0 when there are none)."""
    import keras
    from keras import ops

    if not losses:
        return 0.0
    return ops.sum(ops.stack([ops.cast(ops.sum(v), keras.config.floatx()) for v in losses]))


def _correct(y: Any, y_pred: Any) -> Any:
    """1.0 where ``argmax(y_pred)`` equals the integer label (sparse categorical accuracy)."""
    from keras import ops

    y = ops.reshape(y, (-1,))
    return ops.cast(
        ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), ops.cast(y, "int32")), "float32"
    )
