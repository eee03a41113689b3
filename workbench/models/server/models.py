"""``/v1/models``: the models a key may use."""

from __future__ import annotations

from fastapi import APIRouter

from workbench.errors import ModelNotFound
from workbench.models.server.deps import Authed
from workbench.models.server.schemas import ERRORS, ModelCard, ModelList

router = APIRouter(tags=["openai"])


@router.get("/v1/models", summary="Models this key may use.", response_model=ModelList,
            responses=ERRORS)
async def list_models(gw: Authed) -> ModelList:
    return ModelList(data=[ModelCard(id=s.name, owned_by=s.provider, kind=s.kind)
                           for s in gw.models()])


@router.get("/v1/models/{model}", summary="One model, if this key may use it.",
            response_model=ModelCard, responses=ERRORS)
async def get_model(model: str, gw: Authed) -> ModelCard:
    spec = gw.settings.model_specs().get(model)
    if spec is None:
        raise ModelNotFound(f"unknown model {model!r}; GET /v1/models lists yours")
    gw.policy.check_model(gw.principal, spec.name)
    return ModelCard(id=spec.name, owned_by=spec.provider, kind=spec.kind)


__all__ = ["router"]
