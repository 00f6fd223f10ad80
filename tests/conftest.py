"""Test-wide setup."""

from __future__ import annotations

import os

# As inference.LlamaRunner does before loading llama.cpp: passive OpenMP waiting, so
# that tests running beside other CPU work (this suite starts several processes on a
# 2-core machine) do not crawl through spinning barriers. Set before anything imports
# llama_cpp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
