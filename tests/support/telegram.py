"""Shared set-up for Telegram channel tests: a gateway wired to the fake Bot API and model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_telegram import FakeTelegram

ADA = 4242
EVE = 6666


def write_config(
    data_dir: Path,
    fake: FakeTelegram,
    model: FakeOpenAI | None = None,
    *,
    allowed: tuple[int, ...] = (ADA,),
    edit_interval_s: float = 0.2,
    extra: str = "",
) -> None:
    """config.toml for a gateway process (the token goes in the environment, never here)."""
    text = ""
    if model is not None:
        text += (
            f'[models]\ndefault = "local:fake-model"\n\n'
            f'[providers.local]\nkind = "openai"\nbase_url = "{model.base_url}"\n\n'
        )
    text += (
        f'[telegram]\nenabled = true\napi_base_url = "{fake.base_url}"\n'
        f"allowed_users = {list(allowed)}\nedit_interval_s = {edit_interval_s}\n"
        f"poll_timeout_s = 1\n{extra}"
    )
    (data_dir / "config.toml").write_text(text)


def telegram_settings(
    fake: FakeTelegram, *, allowed: tuple[int, ...] = (ADA,), **extra: Any
) -> dict[str, Any]:
    """Settings for an in-process gateway (init arguments, like flags)."""
    return {
        "enabled": True,
        "api_base_url": fake.base_url,
        "token": fake.token,
        "allowed_users": list(allowed),
        "edit_interval_s": 0.2,
        "poll_timeout_s": 1,
        **extra,
    }


def model_settings(model: FakeOpenAI) -> dict[str, Any]:
    return {
        "models": {"default": "local:fake-model"},
        "providers": {"local": {"kind": "openai", "base_url": model.base_url}},
    }
