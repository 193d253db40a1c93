"""All configuration in one place, read from env vars (prefix CLICKCAST_, nested with __).

Example: CLICKCAST_KAFKA__PORT=19092, CLICKCAST_FEAST__ONLINE_STORE=redis.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class KafkaSettings(BaseModel):
    version: str = "3.9.1"
    host: str = "127.0.0.1"
    port: int = 19092
    controller_port: int = 19093
    heap: str = "512m"
    # Security for later deployments; PLAINTEXT on the local stack.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


class TopicSettings(BaseModel):
    clicks: str = "clicks"
    predictions: str = "predictions"
    dead_letters: str = "clicks.dlq"
    partitions: int = Field(4, ge=1)
    replication_factor: int = Field(1, ge=1)


class RedisSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 16379

    @property
    def connection_string(self) -> str:
        return f"{self.host}:{self.port}"


class TritonSettings(BaseModel):
    host: str = "127.0.0.1"
    http_port: int = 18000
    grpc_port: int = 18001
    metrics_port: int = 18002
    model_name: str = "clickcast"
    timeout_s: float = Field(2.0, gt=0)
    retries: int = Field(3, ge=0)

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"


class FeastSettings(BaseModel):
    online_store: Literal["sqlite", "redis"] = "sqlite"
    project: str = "clickcast"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLICKCAST_", env_nested_delimiter="__", extra="ignore")

    run_dir: Path = PROJECT_ROOT / ".run"
    cache_dir: Path = PROJECT_ROOT / ".cache"
    model_repository: Path = PROJECT_ROOT / "model_repository"
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    redis: RedisSettings = RedisSettings()
    triton: TritonSettings = TritonSettings()
    feast: FeastSettings = FeastSettings()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
