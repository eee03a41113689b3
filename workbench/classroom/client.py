"""HTTP calls an attendee makes to the facilitator's gateway before joining: what it
serves (``GET /v1/classroom/profile``) and whether it answers (``workbench join --check``).

Every failure becomes one sentence saying what is wrong and what to do; the key never
appears in a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.classroom.attendee import Joined
from workbench.errors import ConfigError

__all__ = ["Check", "check", "fetch_joined"]

TIMEOUT_S = 10.0


@dataclass
class Check:
    step: str
    ok: bool
    detail: str


def _error_text(resp: Any) -> str:
    try:
        err = resp.json().get("error", {})
        return str(err.get("message") or resp.reason_phrase)[:200]
    except (ValueError, AttributeError):
        return str(resp.reason_phrase)


def _get(client: Any, url: str, path: str) -> Any:
    import httpx

    try:
        return client.get(path)
    except httpx.ConnectError:
        raise ConfigError(f"cannot reach the facilitator's gateway at {url} (connection "
                          "refused or no route): check the URL on your sheet, that you are on "
                          "the workshop network, and that the facilitator's gateway is "
                          "running") from None
    except httpx.TimeoutException:
        raise ConfigError(f"the facilitator's gateway at {url} did not answer within "
                          f"{TIMEOUT_S:.0f} s: check the URL and the network") from None
    except httpx.HTTPError as exc:
        raise ConfigError(f"talking to {url} failed ({type(exc).__name__}); check the "
                          "URL") from None


def _client(url: str, key: str) -> Any:
    import httpx

    return httpx.Client(base_url=url, timeout=TIMEOUT_S,
                        headers={"Authorization": f"Bearer {key}"})


def fetch_joined(url: str, key: str) -> Joined:
    """What the gateway at ``url`` serves to ``key`` (raises a clear ConfigError if the
    gateway is unreachable, is not a workbench gateway, or refuses the key)."""
    with _client(url, key) as client:
        resp = _get(client, url, "/v1/classroom/profile")
        if resp.status_code == 401:
            raise ConfigError(f"the gateway at {url} refused your key ({_error_text(resp)}); "
                              "copy it again from your sheet, or ask the facilitator")
        if resp.status_code == 404:
            raise ConfigError(f"{url} answers but is not a workbench classroom gateway "
                              "(no /v1/classroom/profile); check the URL and port")
        if resp.status_code >= 400:
            raise ConfigError(f"the gateway at {url} answered {resp.status_code}: "
                              f"{_error_text(resp)}")
        try:
            data = resp.json()
            return Joined(url=url, classroom=str(data["classroom"]), key_id=str(data["key_id"]),
                          chat_model=str(data["chat_model"]),
                          embed_model=str(data["embed_model"]),
                          answer_strategy=str(data.get("answer_strategy") or "auto"),
                          models=list(data["models"]))
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{url} sent a classroom profile this workbench does not "
                              "understand; check that both sides run the same version") from None


def check(url: str, key: str, embed_model: str) -> list[Check]:
    """Reachability, the key, and one small embeddings call through the gateway (cheap,
    and it proves the model path, not just the web server). Stops at the first failure."""
    out: list[Check] = []
    with _client(url, key) as client:
        try:
            resp = _get(client, url, "/healthz")
        except ConfigError as exc:
            return [Check("reach", False, exc.message)]
        if resp.status_code != 200:
            return [Check("reach", False, f"{url}/healthz answered {resp.status_code}: is this "
                                          "the facilitator's workbench gateway?")]
        out.append(Check("reach", True, f"{url} answers"))
        resp = client.get("/v1/models")
        if resp.status_code != 200:
            out.append(Check("key", False, f"your key was refused ({_error_text(resp)}); run "
                                           "`workbench leave`, then join with the key on your "
                                           "sheet, or ask the facilitator"))
            return out
        names = [m.get("id") for m in resp.json().get("data", [])]
        out.append(Check("key", True, f"key accepted; models: {', '.join(map(str, names))}"))
        resp = client.post("/v1/embeddings", json={"model": embed_model, "input": ["ping"]})
        if resp.status_code != 200:
            out.append(Check("embeddings", False, f"an embeddings call failed "
                                                  f"({resp.status_code}: {_error_text(resp)})"))
            return out
        out.append(Check("embeddings", True, f"{embed_model} answered through the gateway"))
    return out
