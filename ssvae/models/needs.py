"""What a model asks of a run, read from its constructor's signature.

A model names the data facts it needs (``x_dim``, ``num_classes``, ``likelihood``, ...) and, by a
``vae`` parameter, M1's pretrained VAE. The entry point supplies what is named, so it holds no
list of model kinds: adding a model is one model file and one config. A model whose settings
make it another model in a results table (M2+VAT without its bound) says so by a
``name_in_tables(name, settings)`` class method.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from hydra.utils import get_object


def _parameters(target: str) -> dict[str, inspect.Parameter] | None:
    """The constructor's parameters, or None when ``target`` cannot be imported (the error, with
    the choices, is reported when the model is built)."""
    try:
        return dict(inspect.signature(get_object(target)).parameters)
    except Exception:
        return None


def facts_taken_by(target: str, facts: dict[str, Any]) -> dict[str, Any]:
    """The data facts that the model's constructor names (all of them if it takes **kwargs)."""
    parameters = _parameters(target)
    if parameters is None or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    ):
        return facts
    return {key: value for key, value in facts.items() if key in parameters}


def takes_pretrained_vae(target: str) -> bool:
    """Whether the model builds on M1's VAE (M1, M1+M2): its constructor has a ``vae``."""
    parameters = _parameters(target)
    return parameters is not None and "vae" in parameters


def configured_name(model_settings: Mapping[str, Any]) -> str:
    """The model config's ``name``, else its class name in lower case."""
    target = str(model_settings["_target_"])
    return str(model_settings.get("name") or target.rsplit(".", 1)[-1].lower())


def name_in_tables(model_settings: Mapping[str, Any]) -> str:
    """The model's row name in results tables: its configured name, as the model's class renames
    it for these settings (``name_in_tables(name, settings)``), if it does."""
    name = configured_name(model_settings)
    try:
        rename = get_object(str(model_settings["_target_"])).name_in_tables
    except Exception:  # not importable (an older record) or nothing to rename
        return name
    return str(rename(name, model_settings))
