"""Feast's Redis layout (one hash per entity key + project: a murmur3 field per feature, `_ts:<view>` holding
the event time), written by a Lua script: for each row the script reads the stored event time and HSETs the row
only if it is at least as new. A micro-batch goes as one script call per `USERS_PER_CALL` users, each sent as soon
as it is encoded and all answered in one round trip at the end, so Redis runs a call while the next is encoded
(one call a batch left both sides idle half the time: 41k against 60-70k rows/s at batch 500, measured).
Feast's own writer reads, compares and writes row by row from Python, and rebuilds every field name hash and
Value per row; here they are computed once. The script needs every key on one node: Redis cluster and
sentinel setups go through Feast's own writer (`features.writers.open_writer`)."""

from __future__ import annotations

from redis.exceptions import NoScriptError, ResponseError

from features.writers.base import OnlineWriter, Row
from features.writers.wire import timestamp_value

SOCKET_TIMEOUT_S = 5.0  # a batch's script takes milliseconds; a Redis silent for this long is down
# Users a script call: small enough that a batch of 64 already overlaps two calls, large enough that a call's own
# cost (its command, one Lua start) stays small against its rows'.
USERS_PER_CALL = 32

# KEYS: one hash per row. ARGV: the time field, the TTL (0: none), the number of features F, the F field names,
# then per row: the serialized Timestamp and the F serialized Values.
# The stored time is a protobuf Timestamp: field 1 (seconds) and field 2 (nanos) as varints, zeros omitted
# (event times before 1970 are refused by the event schema, so seconds are never negative).
_WRITE_NEWER = """
local function varint(s, i)
  local n, scale = 0, 1
  while true do
    local b = string.byte(s, i)
    n = n + (b % 128) * scale
    i = i + 1
    if b < 128 then return n, i end
    scale = scale * 128
  end
end
local function seconds_nanos(s)
  local sec, nanos, i = 0, 0, 1
  while i <= #s do
    local tag = string.byte(s, i)
    local v
    v, i = varint(s, i + 1)
    if tag == 8 then sec = v elseif tag == 16 then nanos = v end
  end
  return sec, nanos
end
local ts_field, ttl, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local at, written = 4 + n, 0
for k = 1, #KEYS do
  local prev = redis.call('HGET', KEYS[k], ts_field)
  local newer_stored = false
  if prev then
    local sec, nanos = seconds_nanos(ARGV[at])
    local ps, pn = seconds_nanos(prev)
    newer_stored = ps > sec or (ps == sec and pn > nanos)
  end
  if not newer_stored then
    local args = {ts_field, ARGV[at]}
    for f = 1, n do
      args[2 * f + 1] = ARGV[3 + f]
      args[2 * f + 2] = ARGV[at + f]
    end
    redis.call('HSET', KEYS[k], unpack(args))
    if ttl > 0 then redis.call('EXPIRE', KEYS[k], ttl) end
    written = written + 1
  end
  at = at + 1 + n
end
return written
"""


def connect(connection_string: str, timeout_s: float = SOCKET_TIMEOUT_S):
    """A client for Feast's connection string (host:port,password=...,ssl=true), with socket timeouts: without
    them a Redis that stops answering (paused, packets dropped) blocks the write forever, and the stream's retry
    loop never hears of it."""
    import redis
    from feast.infra.online_stores.redis import RedisOnlineStore

    nodes, params = RedisOnlineStore._parse_connection_string(connection_string)
    timeouts = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s, "socket_keepalive": True}
    return redis.Redis(host=nodes[0]["host"], port=int(nodes[0]["port"]), **{**timeouts, **params})


class RedisWriter(OnlineWriter):
    def __init__(self, store) -> None:
        from feast.infra.online_stores.helpers import _mmh3, compute_versioned_name

        super().__init__(store)
        online = self.config.online_store
        view = compute_versioned_name(self.view, self.config.registry.enable_online_feature_view_versioning)
        fields = {name: _mmh3(f"{view}:{name}") for name in self.serializers}
        self._project = self.config.project.encode()
        self._head = [f"_ts:{view}", online.key_ttl_seconds or 0, len(fields), *fields.values()]
        self._fields = [f"_ts:{view}", *fields.values()]  # this view's fields of a user's hash
        self._client = connect(online.connection_string)
        self._script = self._client.register_script(_WRITE_NEWER)  # EVALSHA, loading the script when missing

    def _write(self, rows: list[Row]) -> None:
        try:
            self._send_calls(rows)
        except NoScriptError:  # Redis lost its scripts (restart, SCRIPT FLUSH): load it, write the batch again
            self._script.sha = self._client.script_load(self._script.script)
            self._send_calls(rows)

    def _send_calls(self, rows: list[Row]) -> None:
        """One EVALSHA per USERS_PER_CALL rows, sent before the next is encoded; the replies are read at the end."""
        client, errors = self._client, []
        connection = client.connection_pool.get_connection()
        try:
            calls = 0
            for lo in range(0, len(rows), USERS_PER_CALL):
                keys, args = [], list(self._head)
                for user_id, event_ts, features in rows[lo : lo + USERS_PER_CALL]:
                    keys.append(self.entity_key(user_id) + self._project)
                    args.append(timestamp_value(event_ts))
                    args += [serialize(features[name]) for name, serialize in self.serializers.items()]  # fields' order
                # A health check (PING) between pipelined calls would read an earlier call's reply as its own.
                connection.send_command("EVALSHA", self._script.sha, len(keys), *keys, *args, check_health=calls == 0)
                calls += 1
            for _ in range(calls):  # every reply is read, so that the connection goes back to the pool clean
                try:
                    client.parse_response(connection, "EVALSHA")
                except ResponseError as exc:  # one call's error reply (NOSCRIPT among them); the others still come
                    errors.append(exc)
        except BaseException:
            connection.disconnect()  # replies may be left unread: the connection must not be reused as it is
            raise
        finally:
            client.connection_pool.release(connection)
        if errors:
            raise next((e for e in errors if isinstance(e, NoScriptError)), errors[0])  # NOSCRIPT: reload and retry

    def _delete(self, user_ids: list[str]) -> None:
        # This view's fields only: the hash may hold other views' features of the same user. Redis drops a hash
        # once its last field is gone.
        pipe = self._client.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.hdel(self.entity_key(user_id) + self._project, *self._fields)
        pipe.execute()

    def close(self) -> None:
        self._client.close()
