"""The whole local stack: bring services up (in parallel, idempotently), down, and report status."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from deploy.stack.kafka import KafkaService
from deploy.stack.process import ManagedProcess, ServiceError
from deploy.stack.redis import RedisService
from deploy.stack.service import Service
from deploy.stack.topics import ensure_topics
from deploy.stack.triton import TritonService
from streams.settings import Settings


def services(settings: Settings) -> list[Service]:
    """In start order; `down` stops them in reverse."""
    return [KafkaService(settings), RedisService(settings), TritonService(settings)]


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # healthy | unhealthy | stopped
    pid: int | None
    port: int
    startup_s: float | None

    def line(self) -> str:
        pid = str(self.pid) if self.pid else "-"
        startup = f"{self.startup_s:.1f}s" if self.startup_s is not None else "-"
        return f"{self.name:<7} {self.state:<9} pid={pid:<8} port={self.port:<6} startup={startup}"

    def as_dict(self) -> dict:
        return asdict(self)


# Longer than Triton takes to load a new model version (about 20 s here).
UNHEALTHY_GRACE_S = 60.0
# The settings that move a service to other ports, for the message when its ports are taken.
PORT_SETTINGS = {
    "kafka": "CLICKCAST_KAFKA__PORT, CLICKCAST_KAFKA__CONTROLLER_PORT",
    "redis": "CLICKCAST_REDIS__PORT",
    "triton": "CLICKCAST_TRITON__HTTP_PORT, CLICKCAST_TRITON__GRPC_PORT, CLICKCAST_TRITON__METRICS_PORT",
}


def service_status(service: Service) -> ServiceStatus:
    pid = service.pid()
    state = "stopped" if pid is None else "healthy" if service.healthy() else "unhealthy"
    return ServiceStatus(service.name, state, pid, service.port, service.startup_s() if pid else None)


def status(settings: Settings) -> list[ServiceStatus]:
    return [service_status(s) for s in services(settings)]


def not_healthy(settings: Settings, grace_s: float) -> list[str]:
    """Services not healthy within `grace_s` each (a running one may be briefly not ready); stopped ones at once."""
    return [s.name for s in services(settings) if not _settles(s, grace_s)]


def prepare(settings: Settings, report: Callable[[str], None] = print) -> None:
    """Everything `up` needs that takes a download (Kafka's jars, the Triton stub's numpy<2 env)."""
    for service in services(settings):
        began = time.monotonic()
        service.prepare()
        report(f"{service.name}: ready to start ({time.monotonic() - began:.1f} s)")


def _settles(service: Service, grace_s: float = UNHEALTHY_GRACE_S) -> bool:
    """A running service may be briefly not ready (Triton while it swaps model versions): wait before
    declaring it hung and restarting it."""
    deadline = time.monotonic() + grace_s
    while not service.healthy():
        if time.monotonic() > deadline or service.pid() is None:
            return False
        time.sleep(0.5)
    return True


def _bring_up(service: Service) -> str:
    """Start one service unless it already runs healthy; returns a line for the user."""
    pid = service.pid()
    if pid is not None and _settles(service):
        return f"{service.name}: already running (pid {pid})"
    service.stop()  # a hung instance, or children left behind by one that crashed
    if service.healthy():
        raise ServiceError(
            f"{service.name}: port {service.port} answers but no {service.name} was started from this run dir "
            f"(another instance?): stop it or choose other ports ({PORT_SETTINGS.get(service.name, 'in settings')})"
        )
    elapsed = service.start()
    return f"{service.name}: started in {elapsed:.1f} s (pid {service.pid()}, port {service.port})"


def up(settings: Settings, report: Callable[[str], None] = print) -> None:
    """Start every service (in parallel: start-up is mostly waiting), then create the topics."""
    all_services = services(settings)
    for service in all_services:
        if isinstance(service, TritonService):
            service.check_model()  # fail before starting anything else
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=len(all_services)) as pool:
        futures = [(s, pool.submit(_bring_up, s)) for s in all_services]
        for service, future in futures:
            try:
                report(future.result())
            except (ServiceError, OSError, RuntimeError) as exc:
                errors.append(f"{service.name}: {exc}" if not str(exc).startswith(service.name) else str(exc))
    if len(errors) == 1:
        raise ServiceError(errors[0])
    if errors:  # the first line names every failure; each one's detail follows
        raise ServiceError("; ".join(e.partition("\n")[0] for e in errors) + "\n" + "\n".join(errors))
    for change in ensure_topics(settings):
        report(f"topics: {change}")


def down(settings: Settings, report: Callable[[str], None] = print) -> None:
    for process in clients(settings):
        # Only a live process that is the one recorded: a stale file's pid may now lead another group.
        if process.pid() is None:
            process.pid_file.unlink(missing_ok=True)
            continue
        try:
            process.stop(grace_s=15.0)
            report(f"{process.name}: stopped (a client of the stack, left by an interrupted run)")
        except (ServiceError, OSError) as exc:  # the stack's services still go down
            report(f"{process.name}: could not be stopped: {exc}")
    for service in reversed(services(settings)):
        report(f"{service.name}: {'stopped' if service.stop() else 'not running'}")


def clients(settings: Settings) -> list[ManagedProcess]:
    """The other processes with a pid file under the run dir (stream workers, benchmark relays): an interrupted
    demo, test or benchmark can leave them behind, and `make clean` would delete the only record of them."""
    own = {service.process.pid_file for service in services(settings)}
    return [
        ManagedProcess(pid_file.stem, pid_file.parent)
        for pattern in ("*/*.pid", "*/workers/*.pid")  # the demo's workers, a benchmark's relays and workers
        for pid_file in sorted(settings.run_dir.glob(pattern))
        if pid_file not in own
    ]
