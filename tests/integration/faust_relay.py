"""A one-agent faust app for the stack test: upper-cases every value from one topic into another.

Run as a worker: `RELAY_TAG=x RELAY_BROKER=host:port RELAY_DATA=dir python -m tests.integration.faust_relay worker`
(faust keeps a data directory even for memory tables; by default it would land in the working directory).
It uses faust's `kafka://` transport (aiokafka), the one the stream workers use.
"""

from __future__ import annotations

import os

import faust

TAG = os.environ["RELAY_TAG"]
app = faust.App(
    f"relay-{TAG}",
    broker=f"kafka://{os.environ['RELAY_BROKER']}",
    store="memory://",
    datadir=os.environ["RELAY_DATA"],
    web_enabled=False,
    topic_partitions=1,
)
source = app.topic(f"relay-in-{TAG}", value_serializer="raw")
sink = app.topic(f"relay-out-{TAG}", value_serializer="raw")


@app.agent(source)
async def relay(stream):
    async for value in stream:
        await sink.send(value=value.upper())


if __name__ == "__main__":
    app.main()
