"""Reply generation: one interface, two backends chosen by ``generation.backend``.

``transformers``  an in-process causal LM, loaded once per process (``get_generator``):
                  on the GPU in bfloat16 with ``device_map="auto"`` when there is one
                  (``accelerate`` is needed for ``device_map``; without it the model is
                  moved to ``cuda`` whole), on the CPU in float32 otherwise. Default: the
                  bundled SmolLM2-135M-Instruct (``models.bundled_smollm``). One
                  generation runs at a time per process (a lock); waiting counts against
                  the timeout. For many concurrent conversations use the HTTP backend.
``openai``        an OpenAI-compatible ``/chat/completions`` endpoint (vLLM, TGI,
                  llama.cpp server …) through the ``openai`` client, with a per-request
                  timeout, retries with
                  exponential back-off on timeouts, connection errors, 429 and 5xx, and an
                  overall deadline.
``extractive``    no generator (``get_generator`` returns None): every answer is the
                  quoted best passage.

Every failure is a ``GenerationError`` (``GenerationTimeout`` for the deadline); the
caller answers extractively instead, so a slow or dead backend never silences the
assistant.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

from knowledge.config import GenerationSettings, KnowledgeConfig
from knowledge.models import apply_torch_threads, causal_lm_path, device_for

logger = logging.getLogger(__name__)

Messages = Sequence[Dict[str, str]]


class GenerationError(RuntimeError):
    """The backend could not produce a reply."""


class GenerationTimeout(GenerationError):
    """The backend did not answer within the deadline."""


@dataclass
class Generation:
    """A generated reply and what it cost."""

    text: str
    backend: str
    seconds: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_s: Optional[float] = None


class Generator:
    """The interface both backends implement."""

    name = "generator"

    def generate(self, messages: Messages, *, max_new_tokens: Optional[int] = None,
                 timeout_s: Optional[float] = None) -> Generation:
        raise NotImplementedError


# ----------------------------------------------------------------------------- transformers
class TransformersGenerator(Generator):
    """A causal LM in this process."""

    name = "transformers"

    def __init__(self, settings: GenerationSettings, cache_dir: Path,
                 torch_threads: Optional[int] = None) -> None:
        self.settings = settings
        self.cache_dir = Path(cache_dir)
        self.torch_threads = torch_threads
        self.model: Any = None
        self.tokenizer: Any = None
        self.device = "cpu"
        self.load_seconds = 0.0
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def load(self) -> "TransformersGenerator":
        """Load the tokenizer and the model (once)."""
        with self._load_lock:
            if self.model is not None:
                return self
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            started = time.perf_counter()
            apply_torch_threads(self.torch_threads)
            opts = self.settings.transformers
            path = causal_lm_path(opts.model, self.cache_dir)
            self.device = device_for(opts.device)
            on_gpu = self.device.startswith("cuda")
            dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16,
                     "float32": torch.float32}.get(
                opts.dtype, torch.bfloat16 if on_gpu else torch.float32)
            kwargs: Dict[str, Any] = {"dtype": dtype}
            if on_gpu and _has_accelerate():
                kwargs["device_map"] = "auto" if self.device == "cuda" else self.device
            tokenizer = AutoTokenizer.from_pretrained(path)
            model: Any = AutoModelForCausalLM.from_pretrained(path, **kwargs)
            if on_gpu and "device_map" not in kwargs:
                model = model.to(self.device)
            model.eval()
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            tokenizer.padding_side = "left"
            self.tokenizer, self.model = tokenizer, model
            self.load_seconds = time.perf_counter() - started
            logger.info("loaded %s on %s (%s) in %.1f s", path, self.device, dtype,
                        self.load_seconds)
        return self

    @property
    def input_device(self) -> Any:
        return getattr(self.model, "device", self.device)

    def _encode(self, batch: Sequence[Messages]) -> Any:
        texts = [self._chat_text(m) for m in batch]
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True,
                                 add_special_tokens=False)
        return {k: v.to(self.input_device) for k, v in encoded.items()}

    def _chat_text(self, messages: Messages) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=True)
        parts = [f"{m['role'].upper()}:\n{m['content']}" for m in messages]
        return "\n\n".join(parts) + "\n\nASSISTANT:\n"

    def _generate_kwargs(self, max_new_tokens: int, max_time: Optional[float]) -> Dict[str, Any]:
        temperature = self.settings.temperature
        kwargs: Dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": temperature > 0,
            "pad_token_id": self.tokenizer.pad_token_id,
            "repetition_penalty": 1.1,
        }
        if temperature > 0:
            kwargs["temperature"] = temperature
        else:  # greedy: silence the sampling defaults of the model's generation config
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if max_time:
            kwargs["max_time"] = max_time
        return kwargs

    def generate(self, messages: Messages, *, max_new_tokens: Optional[int] = None,
                 timeout_s: Optional[float] = None) -> Generation:
        return self.generate_batch([messages], max_new_tokens=max_new_tokens,
                                   timeout_s=timeout_s)[0]

    def generate_batch(self, batch: Sequence[Messages], *, max_new_tokens: Optional[int] = None,
                       timeout_s: Optional[float] = None,
                       **generate_kwargs: Any) -> List[Generation]:
        """Replies to several prompts in one batched ``generate`` call (left padding).

        ``generate_kwargs`` go to ``model.generate`` (e.g. ``min_new_tokens`` for benchmarks).
        """
        import torch

        started = time.perf_counter()
        timeout_s = timeout_s or self.settings.timeout_s
        try:
            self.load()
        except Exception as exc:  # noqa: BLE001 - a missing or broken model is a backend failure
            raise GenerationError(f"cannot load the language model: {exc}") from exc
        waited = time.perf_counter() - started
        if not self._run_lock.acquire(timeout=max(0.0, timeout_s - waited)):
            raise GenerationTimeout("the language model is busy with another reply")
        try:
            remaining = timeout_s - (time.perf_counter() - started)
            if remaining <= 0:
                raise GenerationTimeout("no time left to generate")
            inputs = self._encode(batch)
            max_new = max_new_tokens or self.settings.max_new_tokens
            with torch.inference_mode():
                kwargs = self._generate_kwargs(max_new, remaining)
                kwargs.update(generate_kwargs)
                output = self.model.generate(**inputs, **kwargs)
        except GenerationError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory: answer extractively
            raise GenerationError(f"generation failed: {type(exc).__name__}: {exc}") from exc
        finally:
            self._run_lock.release()
        seconds = time.perf_counter() - started
        prompt_len = inputs["input_ids"].shape[1]
        results = []
        eos = self.tokenizer.eos_token_id
        for row in range(output.shape[0]):
            new = output[row, prompt_len:]
            finished = bool((new == eos).any()) if eos is not None else True
            count = int((new != self.tokenizer.pad_token_id).sum()) if not finished else int(
                (new == eos).nonzero()[0][0]) + 1
            if seconds >= timeout_s and not finished and count < max_new:
                raise GenerationTimeout(f"the language model took longer than {timeout_s:.0f} s")
            text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
            results.append(Generation(text=text, backend=self.name, seconds=seconds,
                                      prompt_tokens=int(inputs["attention_mask"][row].sum()),
                                      completion_tokens=count))
        return results

    def stream(self, messages: Messages, *, max_new_tokens: Optional[int] = None,
               **generate_kwargs: Any) -> Iterator[str]:
        """The reply piece by piece as it is generated (for time-to-first-token)."""
        from transformers import TextIteratorStreamer

        self.load()
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True,
                                        skip_special_tokens=True)
        inputs = self._encode([messages])
        kwargs = dict(inputs, streamer=streamer,
                      **self._generate_kwargs(max_new_tokens or self.settings.max_new_tokens,
                                              None))
        kwargs.update(generate_kwargs)
        errors: List[BaseException] = []

        def run() -> None:
            import torch

            try:
                with self._run_lock, torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                errors.append(exc)
                streamer.on_finalized_text("", stream_end=True)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        yield from streamer
        thread.join()
        if errors:
            raise GenerationError(str(errors[0])) from errors[0]


def _has_accelerate() -> bool:
    import importlib.util

    return importlib.util.find_spec("accelerate") is not None


# ----------------------------------------------------------------------------- HTTP
class OpenAICompatibleGenerator(Generator):
    """``/chat/completions`` through the ``openai`` client, with our timeout, retries and
    deadline.

    The client's own retries are off (``max_retries=0``): ours retry on timeouts,
    connection errors, 408/409/425/429 and 5xx with ``retry_backoff_s`` doubled each
    time, never on other 4xx, and never past the overall deadline.
    """

    name = "openai"

    RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}

    def __init__(self, settings: GenerationSettings) -> None:
        self.settings = settings
        self.opts = settings.openai
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            # A local server (vLLM, llama.cpp) needs no key; the client insists on one.
            self._client = OpenAI(base_url=self.opts.base_url,
                                  api_key=os.environ.get(self.opts.api_key_env) or "none",
                                  max_retries=0, timeout=self.opts.timeout_s)
        return self._client

    def generate(self, messages: Messages, *, max_new_tokens: Optional[int] = None,
                 timeout_s: Optional[float] = None) -> Generation:
        import openai

        deadline = time.perf_counter() + (timeout_s or self.settings.timeout_s)
        started = time.perf_counter()
        url = self.opts.base_url.rstrip("/") + "/chat/completions"
        last_error = "no attempt made"
        for attempt in range(self.opts.max_retries + 1):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise GenerationTimeout(f"no reply from {url} before the deadline ({last_error})")
            try:
                response = self.client.with_options(
                    timeout=min(self.opts.timeout_s, remaining)).chat.completions.create(
                    model=self.opts.model, messages=list(messages),
                    max_tokens=max_new_tokens or self.settings.max_new_tokens,
                    temperature=self.settings.temperature, stream=False)
            except openai.APITimeoutError:
                last_error = f"attempt {attempt + 1} timed out"
            except openai.APIStatusError as exc:
                last_error = f"attempt {attempt + 1}: HTTP {exc.status_code}"
                if exc.status_code not in self.RETRY_STATUS:
                    raise GenerationError(f"{url} refused the request: {last_error}") from exc
            except openai.APIConnectionError as exc:
                last_error = f"attempt {attempt + 1}: {type(exc).__name__}: {exc}"
            except openai.OpenAIError as exc:  # e.g. a reply that is not JSON
                raise GenerationError(f"unexpected reply from the endpoint: {exc}") from exc
            else:
                return self._parse(response, started)
            logger.warning("generation endpoint %s: %s", url, last_error)
            if attempt < self.opts.max_retries:
                pause = self.opts.retry_backoff_s * (2 ** attempt)
                if time.perf_counter() + pause >= deadline:
                    break
                time.sleep(pause)
        if "timed out" in last_error or time.perf_counter() >= deadline:
            raise GenerationTimeout(f"{url}: {last_error}")
        raise GenerationError(f"{url} failed after {self.opts.max_retries + 1} attempts: "
                              f"{last_error}")

    def _parse(self, response: Any, started: float) -> Generation:
        try:
            text = response.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError) as exc:
            raise GenerationError(f"unexpected reply from the endpoint: {exc}") from exc
        usage = getattr(response, "usage", None)
        return Generation(text=str(text).strip(), backend=self.name,
                          seconds=time.perf_counter() - started,
                          prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                          completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0))


# ----------------------------------------------------------------------------- the process cache
_cache: Dict[str, Generator] = {}
_cache_lock = threading.Lock()


def get_generator(config: KnowledgeConfig) -> Optional[Generator]:
    """The process-wide generator for the configured backend (None for ``extractive``)."""
    settings = config.generation
    if settings.backend == "extractive":
        return None
    key = settings.model_dump_json() + str(config.model_cache_dir) + str(config.torch_threads)
    with _cache_lock:
        if key not in _cache:
            if settings.backend == "transformers":
                _cache[key] = TransformersGenerator(settings, config.model_cache_dir,
                                                    config.torch_threads)
            else:
                _cache[key] = OpenAICompatibleGenerator(settings)
        return _cache[key]
