"""The flows of a ``[nodes]`` section: its nodes, those of its flows.json, checked as one."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

from hadaemon.nodes import flows as flows_module
from hadaemon.nodes.flows import FlowError, Flows, NodeSpec
from hadaemon.nodes.flowsjson import import_flows
from hadaemon.nodes.settings import NodesSettings


def build_flows(
    section: NodesSettings | Mapping[str, Any], base_dir: pathlib.Path
) -> tuple[Flows, list[str]]:
    """The flows of a validated ``[nodes]`` section, and warnings; FlowError lists problems."""
    settings = (section if isinstance(section, NodesSettings)
                else NodesSettings.from_section(section))
    problems: list[str] = []
    warnings: list[str] = []
    nodes: list[NodeSpec] = []
    default_flow = settings.default_flow
    for index, entry in enumerate(settings.node):
        if entry.get("disabled"):
            continue
        node = flows_module.node_from_config(
            entry, f"[nodes].node[{index}] ({entry.get('id')!r})", default_flow, problems
        )
        if node is not None:
            nodes.append(node)
    if settings.flows_file is not None:
        imported = import_flows(settings.flows_file, settings.types)
        problems.extend(imported.problems)
        warnings.extend(imported.warnings)
        nodes.extend(imported.nodes)
    for node in nodes:
        node.wire = node.wire or settings.wire
    problems.extend(flows_module.check(nodes, base_dir, settings.interpreter))
    if problems:
        raise FlowError(problems)
    return Flows(nodes), warnings


__all__ = ["build_flows"]
