"""The Recursive Language Model engine: a root model writes Python that runs against the context in an isolated
worker, delegating reading to sub-models, until it answers. Every step is recorded in a trace.

Nothing heavy is imported here: litellm loads on the first model call.
"""

from .budget import Budget
from .loop import rlm
from .models import Completion, ModelError, Models, sub_llm
from .run import Run

__all__ = ["Budget", "Completion", "ModelError", "Models", "Run", "rlm", "sub_llm"]
