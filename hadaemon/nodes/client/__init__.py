"""The ``homegear`` module that node processes import, shipped with hadaemon.

The supervisor puts this directory first on a node's ``PYTHONPATH``, so
``from homegear import Homegear`` in a node file finds :mod:`homegear` here. Everything in
this directory must import under any Python 3.7+ the node may run with, without Twisted,
without hadaemon and, if need be, without msgpack (a pure-Python codec is carried along).
"""

import os

CLIENT_DIR = os.path.dirname(os.path.abspath(__file__))
"""The directory to put first on a node's import path."""
