"""All configuration in one place, read from env vars (prefix CLICKCAST_, nested with __).

Example: CLICKCAST_KAFKA__PORT=19092, CLICKCAST_FEAST__ONLINE_STORE=redis.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.windows import LONGEST_WINDOW_S

PROJECT_ROOT = Path(__file__).resolve().parent.parent
Port = Annotated[int, Field(ge=1, le=65535)]
TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


def topic_name(name: str) -> str:
    """`name`, if Kafka takes it as a topic name; else a ValueError saying why."""
    if not TOPIC_NAME.fullmatch(name) or name in {".", ".."}:
        raise ValueError(f"'{name}' is not a Kafka topic name (1-249 of letters, digits, '.', '_', '-'; not . or ..)")
    return name


TopicName = Annotated[str, AfterValidator(topic_name)]
# A Triton model name is also a folder of the model repository: no path separators, no "." or "..".
MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def model_name(name: str) -> str:
    """`name`, if it can name a Triton model; else a ValueError saying why."""
    if not MODEL_NAME.fullmatch(name):
        raise ValueError(
            f"'{name}' is not a model name (1-128 of letters, digits, '_', '-', '.', not first '-' or '.')"
        )
    return name


ModelName = Annotated[str, AfterValidator(model_name)]


class KafkaSettings(BaseModel):
    version: str = "3.9.1"
    host: str = "127.0.0.1"
    port: Port = 19092
    controller_port: Port = 19093
    heap: str = "1g"  # -Xms and -Xmx, as kafka-server-start.sh sets them
    # Security for later deployments; PLAINTEXT on the local stack.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None

    @model_validator(mode="after")
    def _security_is_complete(self) -> KafkaSettings:
        """Refuse settings that a client would drop in silence (confluent-kafka, aiokafka and faust each read
        them differently): SASL needs a mechanism and credentials, and other protocols take none."""
        sasl = {
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_username": self.sasl_username,
            "sasl_password": self.sasl_password,
        }
        if self.security_protocol.startswith("SASL_"):
            missing = [name for name, value in sasl.items() if not value]
            if missing:
                raise ValueError(f"security_protocol {self.security_protocol} needs {', '.join(missing)}")
        elif any(sasl.values()):
            raise ValueError(f"sasl_* settings need a SASL security_protocol, not {self.security_protocol}")
        if self.ssl_cafile and not self.security_protocol.endswith("SSL"):
            raise ValueError(f"ssl_cafile needs SSL or SASL_SSL, not {self.security_protocol}")
        if self.ssl_cafile and not Path(self.ssl_cafile).is_file():
            raise ValueError(f"ssl_cafile {self.ssl_cafile} is not a file")
        return self

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


class TopicSettings(BaseModel):
    clicks: TopicName = "clicks"
    predictions: TopicName = "predictions"
    dead_letters: TopicName = "clicks.dlq"
    partitions: int = Field(4, ge=1)
    replication_factor: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _distinct(self) -> TopicSettings:
        # Dead letters read back as clicks would each make another dead letter, without end.
        names = [self.clicks, self.predictions, self.dead_letters]
        if len(set(names)) < len(names):
            raise ValueError(f"the clicks, predictions and dead-letter topics must differ, not {names}")
        return self


class RedisSettings(BaseModel):
    host: str = "127.0.0.1"
    port: Port = 16379

    @property
    def connection_string(self) -> str:
        return f"{self.host}:{self.port}"


class TritonSettings(BaseModel):
    host: str = "127.0.0.1"
    http_port: Port = 18000
    grpc_port: Port = 18001
    metrics_port: Port = 18002
    model_name: ModelName = "clickcast"
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


class StreamSettings(BaseModel):
    app_id: str = "clickcast"  # also the Kafka consumer group: workers with the same id share the partitions
    # Table store, a faust store URL: "rocksdb://", or "memory://" to keep state in RAM (rebuilt from the changelog).
    store: str = "rocksdb://"
    # Largest micro-batch: clicks that arrive while every in-flight slot is busy are carried into the next.
    batch_max: int = Field(256, ge=1)
    # Batches whose model call / feature write / sends overlap. One at a time, the next gathering what arrives
    # meanwhile: at 1,000 events/s a second batch in flight splits the two cores and the model's requests (p50 54-59
    # against 39-41 ms in paired runs) for no more events/s at full speed.
    max_batches_in_flight: int = Field(1, ge=1)
    allowed_lateness_s: float = Field(3600.0, ge=0)
    # The model was trained on each user's last 100 events whatever their age, so the buffer keeps a year of them
    # and the event cap bounds memory. At 30 days, NYC replayed through the buffer gave the model 38.9 events on
    # average against the 66.4 it was evaluated with; at 365 days the same 66.4.
    history_retention_s: float = Field(365 * 86400.0, gt=0)
    history_max_events: int = Field(128, ge=1)
    idle_user_ttl_s: float = Field(365 * 86400.0, gt=0)  # users idle this long leave the table (and its changelog)
    # Expiry reads the table a slice at a time, one slice a round (6-15 µs a user on the worker's loop, by history
    # size): a million users take 2,000 rounds, 33 minutes, each holding the loop a few milliseconds.
    expiry_interval_s: float = Field(1.0, gt=0)
    expiry_slice_users: int = Field(500, ge=1)
    # After a failed batch the worker stops; if faust's stop has not finished by then, the process exits hard. Above
    # the 30 s the clean stop may spend delivering answers, so only a stop that hangs is cut short.
    failed_stop_grace_s: float = Field(90.0, gt=0, allow_inf_nan=False)
    explain: bool = False
    # Allocations between young-generation garbage collections (CPython's default is 700). A batch allocates
    # tens of thousands of short-lived objects that reference counting frees anyway; at the default the
    # collector runs every few events (measured: ~5% of a worker's CPU at the default, more with large states).
    gc_threshold: int = Field(50_000, ge=700)
    # Table store of this worker process; RocksDB workers on one host need one each (default: run_dir/faust).
    data_dir: Path | None = None

    @field_validator("store")
    @classmethod
    def _known_store(cls, url: str) -> str:
        # faust would fail only as the worker starts, with a traceback; claim_table_dir reads the scheme too.
        if url.partition(":")[0] not in ("rocksdb", "memory"):
            raise ValueError(f"a table store URL is rocksdb:// or memory://, not {url!r}")
        return url

    @model_validator(mode="after")
    def _retention_covers_the_longest_window_and_lateness(self) -> StreamSettings:
        # Checked here, not at the first click: UserHistory refuses a retention under the lateness, and every restart
        # would fail again. A late event also needs its windows' full look-back, or their counts come out short.
        needed = LONGEST_WINDOW_S + self.allowed_lateness_s
        if self.history_retention_s < needed:
            raise ValueError(
                f"history_retention_s ({self.history_retention_s:g}) must be >= the longest feature window "
                f"({LONGEST_WINDOW_S:g} s) + allowed_lateness_s ({self.allowed_lateness_s:g}) = {needed:g}"
            )
        return self


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
    stream: StreamSettings = StreamSettings()

    @field_validator("run_dir", "cache_dir", "model_repository")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        # Services start in folders of their own: a relative path would be resolved against each of those.
        return path.expanduser().resolve()

    def updated(self, **sections: dict[str, Any]) -> Settings:
        """A copy with some fields of the named sections replaced: `updated(feast={"online_store": "redis"})`."""
        changes = {name: getattr(self, name).model_copy(update=values) for name, values in sections.items() if values}
        return self.model_copy(update=changes)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
