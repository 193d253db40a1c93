"""The local stack (Kafka, Redis, Triton) as managed processes under `settings.run_dir`."""
