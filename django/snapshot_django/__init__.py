"""Django integration of the snapshot SQLite extension: online, incremental
snapshots of a live SQLite database, taken and restored by management commands
and automatically before migrations."""

# The one place the version is written: CMakeLists.txt reads it for the
# extension and the Debian package, pyproject.toml for this package.
__version__ = "0.1.0"
