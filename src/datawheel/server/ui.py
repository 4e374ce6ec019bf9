"""The web UI (server-rendered pages). Filled in by the UI module."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    return None
