"""Test node: fails before it ever connects."""

print("about to fail", flush=True)
raise SystemExit("this node cannot start")
