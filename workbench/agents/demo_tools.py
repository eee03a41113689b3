"""Small, deterministic tools for the labs, the golden agent tasks and ``workbench eval
--target agent``: nothing here touches the network or the disk."""

from __future__ import annotations

from typing import Literal

from workbench.agents.tools import Tool, tool

WEATHER_C = {"paris": 18, "oslo": 4, "lisbon": 24, "tokyo": 21, "nairobi": 26}


@tool
def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    """Current weather in a city (demo data)."""
    temp = WEATHER_C.get(city.strip().lower())
    if temp is None:
        return f"no weather data for {city}"
    value = temp if unit == "c" else round(temp * 9 / 5 + 32)
    return f"{value} degrees {unit.upper()} in {city}"


@tool
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@tool(dangerous=True)
def delete_records(table: str) -> str:
    """Delete every record of a table (demo: nothing is deleted)."""
    return f"deleted every record of {table}"


def demo_tools() -> list[Tool]:
    return [get_weather, add, delete_records]


__all__ = ["WEATHER_C", "add", "delete_records", "demo_tools", "get_weather"]
