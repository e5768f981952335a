"""Step functions to point agents at (`options.callable`)."""

from __future__ import annotations

import asyncio
from typing import Any


async def greet(context: dict[str, Any]) -> dict[str, Any]:
    """Greets whoever the input names."""
    who = (context.get("input") or {}).get("who", "world")
    return {"greeting": f"hello, {who}", "step": context["step"]}


async def nap(context: dict[str, Any]) -> str:
    """Sleeps for `input.seconds`: a step to time out or cancel."""
    await asyncio.sleep(float((context.get("input") or {}).get("seconds", 60)))
    return "rested"


async def fail(context: dict[str, Any]) -> None:
    raise RuntimeError("the example step failed on purpose")
