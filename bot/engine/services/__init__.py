"""The engine's API, one service per part of the story (see bot/engine/engine.py)."""
