"""Ingest: the ZeroMQ bus, the adapters that bring the field in, the engine, and the plant simulator.

- :mod:`ingest.bus`: message framing (``Message``, ``encode``, ``decode``) and sockets (PUSH/PULL, PUB/SUB,
  DEALER/ROUTER)
- adapters, each ``watchfloor ingest <name>``: :mod:`ingest.uwb` (ranges -> fixes -> tracks, wearable events,
  omlox locations), :mod:`ingest.gas` (OPC UA), :mod:`ingest.vibration`, :mod:`ingest.camera` (edge detections
  and, with :mod:`ingest.camera_infer`, ONNX inference on frames), :mod:`ingest.permits` (permit commands)
- shared edges: :mod:`ingest.adapter`, :mod:`ingest.mqtt_source`, :mod:`ingest.rejects`, :mod:`ingest.tracker`,
  :mod:`ingest.geo`
- :mod:`ingest.engine`: sequencer, recording, site state, replay (``watchfloor engine``, ``watchfloor replay``)
- :mod:`ingest.simulator`: the demo plant speaking the real protocols (``watchfloor simulate``)
"""
