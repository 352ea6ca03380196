"""Settings: one pydantic model, read from a TOML file, with secrets from the environment.

The file path comes from ``--config`` or ``STORYBOT_CONFIG``; secrets (the Discord token, the LLM
API key) may live in ``STORYBOT_DISCORD_TOKEN`` / ``STORYBOT_LLM_API_KEY`` instead of the file so
the file can be shared. Every error names the key that is wrong and how to fix it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bot.validation import field_path

CONFIG_ENV = "STORYBOT_CONFIG"
DISCORD_TOKEN_ENV = "STORYBOT_DISCORD_TOKEN"
LLM_API_KEY_ENV = "STORYBOT_LLM_API_KEY"
DB_PATH_ENV = "STORYBOT_DB_PATH"
FEATHERLESS_BASE_URL = "https://api.featherless.ai/v1"
DISCORD_API_BASE = "https://discord.com/api/v10"
_SECRET_KEYS = frozenset({"token", "api_key"})


def _http_url(value: str) -> str:
    """An http(s) URL with a host: anything else fails at the first turn, far from its cause."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "must be an http:// or https:// URL with a host, such as "
            f"{FEATHERLESS_BASE_URL} or http://127.0.0.1:11434/v1"
        )
    return value.strip()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DiscordSettings(_Section):
    token: SecretStr = SecretStr("")
    guild_ids: list[int] = Field(default_factory=list)
    owner_ids: list[int] = Field(default_factory=list)
    edit_interval_seconds: float = Field(default=1.0, ge=0.2, le=10.0)
    stream_marker: str = " ▌"
    rewound_messages: Literal["delete", "strike"] = "strike"
    # A Discord-compatible server (say, a self-hosted Spacebar) instead of Discord itself.
    api_base: str = Field(default=DISCORD_API_BASE, pattern=r"^https?://[^/\s]+(/\S*)?$")
    # Empty: the gateway the server announces (GET /gateway/bot), or Discord's own.
    gateway_url: str = Field(default="", pattern=r"^(wss?://[^/\s]+(/\S*)?)?$")
    # Sharding (Discord requires it past 2,500 servers): the bot's number of shards, and which
    # of them this process runs (empty: all). 0: one connection, no sharding.
    shard_count: int = Field(default=0, ge=0, le=65_536)
    shards: list[int] = Field(default_factory=list)

    @field_validator("shards")
    @classmethod
    def _shards_of_the_count(cls, shards: list[int], info: ValidationInfo) -> list[int]:
        count = info.data.get("shard_count", 0)
        if shards and not count:
            raise ValueError("needs shard_count too: how many shards the whole bot has")
        wrong = [shard for shard in shards if not 0 <= shard < count]
        if wrong:
            raise ValueError(
                f"shard {wrong[0]} is not one of the bot's {count} shards "
                f"(ids run from 0 to {count - 1}, below shard_count)"
            )
        if len(set(shards)) != len(shards):
            raise ValueError("names a shard twice")
        return sorted(shards)

    @property
    def shard_ids(self) -> list[int]:
        """The shards this process runs (all of them unless ``shards`` says)."""
        return self.shards or list(range(self.shard_count))


class TimeoutSettings(_Section):
    connect: float = Field(default=10.0, gt=0)
    first_token: float = Field(default=60.0, gt=0)
    idle: float = Field(default=30.0, gt=0)
    total: float = Field(default=300.0, gt=0)


class SamplingSettings(_Section):
    temperature: float = Field(default=0.8, ge=0, le=2)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_tokens: int = Field(default=400, ge=1)


class LLMSettings(_Section):
    base_url: Annotated[str, AfterValidator(_http_url)] = FEATHERLESS_BASE_URL
    api_key: SecretStr = SecretStr("")
    narrative_model: str = "mistralai/Mistral-Nemo-Instruct-2407"
    classifier_model: str = "mistralai/Mistral-Nemo-Instruct-2407"
    max_concurrency: int = Field(default=2, ge=1, le=64)
    max_retries: int = Field(default=3, ge=0, le=10)
    use_response_format: bool = True
    max_stop_sequences: int = Field(default=4, ge=0, le=64)
    app_url: str = "https://github.com/storybot/storybot"
    app_title: str = "storybot"
    timeouts: TimeoutSettings = Field(default_factory=TimeoutSettings)
    narrative_sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    classifier_sampling: SamplingSettings = Field(
        default_factory=lambda: SamplingSettings(temperature=0.2, top_p=1.0, max_tokens=300)
    )


class EngineSettings(_Section):
    prompt_token_budget: int = Field(default=3000, ge=500)
    recalled_memories: int = Field(default=8, ge=0, le=50)
    transcript_beats: int = Field(default=40, ge=2, le=200)
    meanwhile_max_beats: int = Field(default=6, ge=1, le=50)
    max_turn_chars: int = Field(default=4000, ge=100, le=20_000)
    checkpoint_seconds: float = Field(default=2.0, ge=0.1, le=60)
    """How often a streaming reply's text so far is saved, so a crash keeps what was shown."""


class StorageSettings(_Section):
    db_path: Path = Path("storybot.db")
    url: str = ""
    """``postgresql://user@host/db`` keeps the story in PostgreSQL, shared by several
    processes with one LLM cap and one turn of a chat at a time (``bot/sharing.py``); empty
    keeps SQLite at ``db_path``, and so does a plain path (it is that file)."""

    @property
    def postgres(self) -> bool:
        """True when the story lives in PostgreSQL, which several processes can share."""
        return urlsplit(self.url.strip()).scheme in ("postgresql", "postgres")


class Settings(_Section):
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)


class ConfigError(Exception):
    """A settings problem worded for the person running the bot, one problem per line."""


def load_settings(path: Path | str | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read settings from ``path`` (or ``$STORYBOT_CONFIG``), then apply environment overrides.

    With no path at all, defaults are used, so ``check-config`` and tests work without a file.
    """
    environ = os.environ if env is None else env
    raw: dict[str, Any] = {}
    chosen = path if path is not None else environ.get(CONFIG_ENV)
    if chosen:
        raw = _read_toml(Path(chosen))
    _apply_env_overrides(raw, environ)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, chosen)) from None
    _check_sharing(settings, f"config key [discord.shards]{f' in {chosen}' if chosen else ''}")
    return settings


def with_shards(settings: Settings, shards: list[int] | None, shard_count: int | None) -> Settings:
    """``settings`` running the shards the command line names (``--shards``, ``--shard-count``)."""
    given: dict[str, object] = {}
    if shard_count is not None:
        given["shard_count"] = shard_count
    if shards is not None:
        given["shards"] = shards
    if not given:
        return settings
    try:
        discord = DiscordSettings.model_validate({**settings.discord.model_dump(), **given})
    except ValidationError as exc:
        raise ConfigError(
            "\n".join(
                f"--{str(err['loc'][0]).replace('_', '-')}: "
                + str(err["msg"])
                .removeprefix("Value error, ")
                .replace("shard_count", "--shard-count")
                for err in exc.errors()
            )
        ) from None
    chosen = settings.model_copy(update={"discord": discord})
    _check_sharing(chosen, "--shards")
    return chosen


def _check_sharing(settings: Settings, where: str) -> None:
    """Shards of one bot run in several processes only over one PostgreSQL (one SQLite file
    has one writer process, so the other shards' processes could not see the story)."""
    discord = settings.discord
    others = sorted(set(range(discord.shard_count)) - set(discord.shard_ids))
    if not others or settings.storage.postgres:
        return
    mine = ", ".join(map(str, discord.shard_ids))
    rest = ", ".join(map(str, others))
    raise ConfigError(
        f"{where}: this process runs shards {mine} of {discord.shard_count}, so shards {rest} "
        "run in other processes, which can share the story only in PostgreSQL: set [storage] "
        'url = "postgresql://user@host/db" for every process (or run all shards here)'
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found: copy config.example.toml to {path} "
            f"or pass --config PATH (or set {CONFIG_ENV})"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"config file {path} is a directory: pass the settings file itself, "
            f"e.g. --config {path / 'config.toml'}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
            f"offset {exc.start}): save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _apply_env_overrides(raw: dict[str, Any], environ: os._Environ[str] | dict[str, str]) -> None:
    overrides = {
        ("discord", "token"): DISCORD_TOKEN_ENV,
        ("llm", "api_key"): LLM_API_KEY_ENV,
        ("storage", "db_path"): DB_PATH_ENV,
    }
    for (section, key), var in overrides.items():
        value = environ.get(var)
        if value:
            target = raw.setdefault(section, {})
            if isinstance(target, dict):
                target[key] = value


def _explain(exc: ValidationError, source: Path | str | None) -> str:
    where = f" in {source}" if source else ""
    lines = []
    for err in exc.errors():
        key = field_path(err)
        if err["type"] == "extra_forbidden":
            hint = "unknown key: check its spelling against config.example.toml"
        elif err["loc"][-1] in _SECRET_KEYS:
            hint = f"{err['msg']}; see config.example.toml"
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            hint = f"{msg} (got {err.get('input')!r}); see config.example.toml"
        lines.append(f"config key [{key}]{where}: {hint}")
    return "\n".join(lines)
