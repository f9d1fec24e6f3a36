"""The Recursive Language Model engine: a root model writes Python that runs against the context in an isolated
worker, delegating reading to sub-models, until it answers. Every step is recorded in a trace.

Nothing heavy is imported here: litellm loads on the first model call.
"""

import sys

from .budget import Budget
from .loop import rlm
from .models import Completion, ModelError, Models, sub_llm
from .run import Run

__all__ = ["Budget", "Completion", "ModelError", "Models", "Run", "rlm", "sub_llm"]


class _CallableModule(type(sys.modules[__name__])):
    """`rj.rlm(...)` is the documented call, and Python binds this subpackage to the same name `rlm_jupyter.rlm`
    as soon as it is imported: making the module callable keeps both meanings working."""

    def __call__(self, *args, **kwargs):
        return rlm(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
