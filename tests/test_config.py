from __future__ import annotations

from pathlib import Path

import pytest

from workbench.config import load_settings
from workbench.errors import ConfigError


def test_defaults_are_offline_embedded() -> None:
    s = load_settings(environ={})
    assert s.profile == "embedded"
    assert s.default_chat_model == "smollm2-135m"
    assert s.default_embed_model == "minilm-l6-v2"
    assert s.resolved_store_url.endswith(".workbench/workbench.db")
    specs = s.model_specs()
    assert {"smollm2-135m", "gemma3-270m", "minilm-l6-v2"} <= set(specs)
    assert all(m.cost(1000, 1000) == 0 for m in specs.values() if m.provider == "embedded")


def test_toml_then_env_precedence(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text(
        'profile = "openai"\ncache = true\nn_threads = 3\n'
        '[fallbacks]\n"gpt-4o" = ["gpt-4o-mini"]\n'
    )
    s = load_settings(environ={"WORKBENCH_N_THREADS": "1"})
    assert s.profile == "openai" and s.cache is True
    assert s.n_threads == 1  # env wins over the file
    assert s.fallbacks == {"gpt-4o": ["gpt-4o-mini"]}
    assert s.default_chat_model == "gpt-4o-mini"
    assert s.model_specs()["gpt-4o"].input_usd_per_mtok > 0


def test_custom_openai_compatible_profile(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text(
        'profile = "vllm"\n[profiles.vllm]\nbase_url = "http://127.0.0.1:8000/v1"\n'
        'api_key_env = "VLLM_KEY"\nchat_model = "qwen"\n'
    )
    s = load_settings(environ={})
    assert s.active_profile().base_url == "http://127.0.0.1:8000/v1"
    assert s.model_specs()["qwen"].provider == "vllm"
    s2 = load_settings(environ={"WORKBENCH_BASE_URL": "http://other:9/v1"})
    assert s2.active_profile().base_url == "http://other:9/v1"


@pytest.mark.parametrize("content, needle", [
    ('profile = "nope"\n', "unknown profile"),
    ("n_threads = -1\n", "n_threads"),
    ("this is [not toml\n", "not valid TOML"),
    ("colour = 'blue'\n", "colour"),
])
def test_bad_settings_say_what_is_wrong(tmp_path: Path, content: str, needle: str) -> None:
    (tmp_path / "workbench.toml").write_text(content)
    with pytest.raises(ConfigError) as exc:
        load_settings(environ={})
    assert needle in exc.value.message


def test_bad_env_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="guardrail_mode"):
        load_settings(environ={"WORKBENCH_GUARDRAIL_MODE": "shred"})
