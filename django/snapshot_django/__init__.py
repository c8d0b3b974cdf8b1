"""Django integration of the snapshot SQLite extension: online, incremental
snapshots of a live SQLite database, taken and restored by management commands
and automatically before migrations."""

__version__ = "0.1.0"
