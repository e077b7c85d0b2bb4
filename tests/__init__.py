"""The test suite: unit tests, integration tests with real peers (mosquitto, asyncua, Chromium), benchmarks'
behaviour. Shared fixtures in ``conftest.py``; message builders in ``builders.py``; test doubles that speak the real
bus framing in ``fake_engine.py``."""
