import socket
import threading

import redis

from features.writers.redis import connect


def test_a_redis_that_stops_answering_times_out_instead_of_blocking_the_writer():
    # A listening socket that never replies: the connection opens (the backlog accepts it), the reply never comes.
    outcome = []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        client = connect(f"127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.2)

        def ping():
            try:
                client.ping()
            except redis.TimeoutError as exc:
                outcome.append(exc)

        caller = threading.Thread(target=ping, daemon=True)
        caller.start()
        caller.join(120)  # redis-py retries with backoff; without a socket timeout this would never return
        assert not caller.is_alive() and len(outcome) == 1
        client.close()


def test_connection_string_options_still_apply():
    client = connect("127.0.0.1:1,password=secret,db=3")
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["password"], kwargs["db"], kwargs["socket_timeout"]) == ("secret", 3, 5.0)
