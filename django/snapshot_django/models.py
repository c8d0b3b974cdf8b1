# No models. The module exists because Django sends pre_migrate only to apps
# that have one (see apps.py).
