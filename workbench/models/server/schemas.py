"""The proxy's response shapes (documentation for the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workbench.http.errors import ErrorResponse, documented_errors


class ModelCard(BaseModel):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = Field(description="The provider that serves the model.")
    kind: str = Field(description="chat, completion or embedding.")


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelCard]


class ChatCompletion(BaseModel):
    """OpenAI's chat.completion object, passed through from the provider."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    object: str = "chat.completion"
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class EmbeddingList(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: str = "list"
    model: str
    data: list[dict[str, Any]] = Field(
        description="`embedding` is a list of floats, or base64 little-endian float32 "
                    "when the request asked for encoding_format=base64.")
    usage: dict[str, Any] | None = None


ERRORS = documented_errors(ErrorResponse, (
    (400, "Bad request (malformed JSON, invalid fields, content blocked)."),
    (401, "Missing, unknown, revoked or expired key."),
    (403, "The key may not use this model."),
    (404, "Unknown model."),
    (413, "Request body too large."),
    (429, "Rate limit reached or budget exhausted."),
    (502, "The upstream provider failed."),
    (504, "The upstream provider timed out."),
))

__all__ = ["ERRORS", "ChatCompletion", "EmbeddingList", "ModelCard", "ModelList"]
