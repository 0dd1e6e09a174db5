"""Stand-in for the get-pip bootstrap script that ansible-test downloads from a host this
machine cannot reach. ansible-test runs it as ``python quiet_pip.py [pip install args]`` in an
empty venv; we install the interpreter's bundled pip (ensurepip), then pip installs the pinned
packages it asked for from the package index, as get-pip would.
"""

from __future__ import annotations

import ensurepip
import runpy
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

ensurepip.bootstrap(upgrade=False)
sys.argv = ["pip", "install"] + [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
