"""Shared test settings: small thread pools and no Ray auth tokens on the test machine."""

from __future__ import annotations

import os

# Ray 2.60 writes and checks an auth token by default; tests talk only to local instances.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HPC_SEG_PLAIN_LOGS", "1")
# Two cores in CI: keep torch from oversubscribing when several processes run.
os.environ.setdefault("OMP_NUM_THREADS", "1")
