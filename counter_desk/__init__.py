"""counter_desk: the desk's composition root, the one package above `ui` and `counter_app`.

It holds what must know every other package: the `counter-app` console script and its command
line (`cli`), the one module that builds the services with their concrete types and hands them
to the core (`wiring`), the self-test that lists every service and its state (`selftest`), and
the demo with the in-process reference server (`demo`, the only importer of `hall_server`).
Nothing imports this package but its own entry points (tests/test_layering.py).
"""
