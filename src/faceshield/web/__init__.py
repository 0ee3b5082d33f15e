"""``faceshield serve``: a local web page to protect photos and short videos (:func:`create_app`).

FastAPI and uvicorn are imported only here, so the rest of faceshield never needs them.
"""
from faceshield.web.app import ServeSettings, create_app
from faceshield.web.presets import DEFAULT_PRESET, WEB_PRESETS, WebPreset

__all__ = ["DEFAULT_PRESET", "WEB_PRESETS", "ServeSettings", "WebPreset", "create_app"]
