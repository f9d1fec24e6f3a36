"""The engine's plug points (engine/protocols.py) are met by the real parts and by the doubles shipped in
rlm_jupyter.testing, so a stand-in that drifts from the engine's use fails here, not in a confusing run."""

from __future__ import annotations

import inspect

from rlm_jupyter.engine import protocols
from rlm_jupyter.engine.models import Models
from rlm_jupyter.engine.worker import Worker
from rlm_jupyter.jupyter.controller import Controller
from rlm_jupyter.testing.models import ServerModels


def test_real_parts_and_shipped_doubles_meet_the_protocols():
    assert issubclass(Models, protocols.CheckedModelClient)
    assert issubclass(ServerModels, protocols.CheckedModelClient)
    assert issubclass(Worker, protocols.ReplWorker)
    assert issubclass(Controller, protocols.PauseControl)
    assert "context_file" in inspect.signature(protocols.WorkerFactory.__call__).parameters
    # Worker itself is a factory: Worker(context_file, limits=..., on_call=...)
    assert {"limits", "on_call"} <= set(inspect.signature(Worker).parameters)


def test_an_object_missing_a_method_is_not_a_model_client():
    class NoBatch:
        def complete(self, model, messages, **kw): ...

    assert not isinstance(NoBatch(), protocols.ModelClient)
    assert not isinstance(object(), protocols.PauseControl)
