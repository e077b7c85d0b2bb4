"""The test suite: unit tests, integration tests with real peers (mosquitto, asyncua, Chromium, the engine process),
benchmarks' behaviour. Shared fixtures in ``conftest.py``; the bus messages adapters send in ``builders.py``; the
records the engine publishes, for tests of pure console functions, in ``records.py``; the real engine on ipc
endpoints with a scripted input source, relays that play a faulty network, and a console process in
``engine_stack.py``."""
