"""The suite's guard against reaching real model APIs really guards."""

from __future__ import annotations

import pytest

from hearth.models import ModelCallError, ModelFactory, run_model
from tests.conftest import NetworkGuard


async def test_a_real_provider_call_is_refused(
    network_guard: NetworkGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    resolved = ModelFactory("openai:gpt-4o-mini", {}).resolve()
    with pytest.raises(ModelCallError):
        await run_model(resolved, "hello")
    assert network_guard.attempts
    assert all("openai" in host for host in network_guard.attempts)
    network_guard.attempts.clear()  # the refusal was the point of this test
