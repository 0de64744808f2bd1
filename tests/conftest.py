"""Shared pytest options: ``--live`` enables tests marked ``live`` (they compare the
model with the running Linux kernel and need root, /proc and /sys)."""
import pytest


def pytest_addoption(parser):
    parser.addoption("--live", action="store_true", default=False,
                     help="run tests marked live (compare with the running kernel)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--live"):
        return
    skip = pytest.mark.skip(reason="live test: run with --live")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)
