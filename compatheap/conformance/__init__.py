"""compatheap's conformance suite: Windows' heap semantics as pytest tests.

Run it against every backend usable here with
``pytest --pyargs compatheap.conformance`` or ``compatheap conformance``.
"""
