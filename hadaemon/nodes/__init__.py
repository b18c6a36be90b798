"""Homegear Node-BLUE Python nodes under hadaemon (see docs/nodes.md).

Each node is its own process running an unchanged node file (``from homegear import
Homegear``), connected to the daemon over a Unix socket, and a bus endpoint
``node:<node id>`` (the path is the input: ``node:n1/0``).
"""

from hadaemon.nodes.faults import Fault
from hadaemon.nodes.flows import FlowError, Flows, NodeSpec, Target
from hadaemon.nodes.flowsconfig import build_flows
from hadaemon.nodes.plugin import NodesPlugin
from hadaemon.nodes.settings import SCHEMA

__all__ = ["SCHEMA", "Fault", "FlowError", "Flows", "NodeSpec", "NodesPlugin", "Target",
           "build_flows"]
