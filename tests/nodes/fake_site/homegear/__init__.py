"""A stand-in for the real ``homegear`` package (a C++ extension) installed on a
machine: hadaemon's own module must take precedence over it."""

raise ImportError("the installed homegear package was imported instead of hadaemon's")
