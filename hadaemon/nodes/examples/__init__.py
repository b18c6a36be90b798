"""Example Node-BLUE Python nodes, run by the example config (etc/hadaemon.toml).

They are node *files* (each runs as its own process, with hadaemon's ``homegear`` module
first on its path); this package only ships them.
"""
